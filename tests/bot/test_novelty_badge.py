"""The badge's wording and thresholds, and MAX_COPIED's redraws."""

from __future__ import annotations

from bot.finishing import Kept
from bot.novelty import NoveltyService
from bot.novelty_badge import badge, draw_novel
from core.generator import Request, Sample
from core.novelty import Novelty, NoveltyIndex


def test_badge_counts_long_runs_warns_on_stitching_and_stays_quiet_otherwise() -> None:
    assert badge(Novelty(43, 0.6), "char", "en") == "⚠ 43 characters copied from the book"
    assert badge(Novelty(9, 0.6), "word", "zh") == "⚠ 有 9 个词是从书里照抄的"
    assert badge(Novelty(18, 0.09), "char", "en") == (
        "🧩 pieced together from the book's phrases: 9% of its 8-grams are new"
    )
    assert badge(Novelty(22, 0.5), "char", "en") is None
    assert badge(None, "char", "en") is None


def _sample(ids: list[int]) -> Sample:
    return Sample(Request("x"), "".join(map(str, ids)), ids, 0, 1)


async def test_draw_novel_keeps_the_first_draw_that_copies_little() -> None:
    service = NoveltyService({})
    service.indexes["m"] = NoveltyIndex(list(range(100)))
    copying, fresh = _sample(list(range(40))), _sample([7, 3] * 20)
    draws: list[int] = []

    async def draw(rng: int) -> Kept:
        draws.append(rng)
        return Kept(fresh, rng)

    kept = await draw_novel(service, "m", 10, copying, 5, draw)
    assert kept.sample is fresh and kept.rng_seed == draws[0] and len(draws) == 1
    assert not kept.every_draw_copied

    async def always_copies(rng: int) -> Kept:
        draws.append(rng)
        return Kept(copying, rng)

    draws.clear()
    kept = await draw_novel(service, "m", 10, copying, 5, always_copies)
    assert kept.every_draw_copied and kept.draws == 4 and len(draws) == 3
    off = await draw_novel(service, "m", 0, copying, 5, always_copies)  # MAX_COPIED off
    assert off.sample is copying and off.novelty == Novelty(40, 0.0)


def test_help_describes_the_game_the_scores_and_inline_mode_in_both_languages() -> None:
    from bot.texts import COMMANDS, text

    for lang in ("en", "zh"):
        helped = text(lang, "help", commands="")
        assert "/game" in helped and "/scores" in helped and "@" in helped
        assert {"game", "scores", "fooled"} <= {name for name, _ in COMMANDS[lang]}


async def test_a_passage_avoids_unknown_tokens_when_it_can() -> None:
    import numpy as np

    from core.book import Book

    service = NoveltyService({})
    heldout = np.array([0] * 10 + list(range(1, 41)) + [0] * 10, dtype=np.int32)
    service.books["m"] = Book("m", np.arange(1, 5, dtype=np.int32), heldout)
    for seed in range(20):
        picked = service.passage("m", 10, np.random.default_rng(seed))
        assert picked is not None and len(picked) == 10 and 0 not in picked
    assert service.passage("m", 500, np.random.default_rng(0)) is None
    assert service.passage("other", 10, np.random.default_rng(0)) is None
