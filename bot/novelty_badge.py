"""The novelty badge and MAX_COPIED: how a sample's copying from its book is shown and limited."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.finishing import Kept
from bot.novelty import NoveltyService
from bot.texts import text
from core.generator import Sample
from core.novelty import BADGE_AT, Novelty, copies_the_book

REDRAWS = 3  # MAX_COPIED: draw again at most this many times


def badge(novelty: Novelty | None, level: str, lang: str) -> str | None:
    """ "⚠ 43 characters copied from the book" when the longest copied run matters, "🧩 pieced
    together" (a description: what a low temperature does) when few of its 8-grams are new,
    else None (nothing worth saying)."""
    if novelty is None or not copies_the_book(novelty, level):
        return None
    unit = text(lang, "unit_char" if level == "char" else "unit_word")
    if novelty.longest_copied >= BADGE_AT.get(level, BADGE_AT["char"]):
        return text(lang, "copied_badge", count=novelty.longest_copied, unit=unit)
    share = round(novelty.new_ngram_share * 100)  # stitched from the book's phrases
    return text(lang, "stitched_badge", share=share, count=novelty.longest_copied, unit=unit)


@dataclass(frozen=True)
class Drawn:
    """The sample kept after MAX_COPIED's redraws, its rng seed and whether every draw copied."""

    sample: Sample
    rng_seed: int
    novelty: Novelty | None
    every_draw_copied: bool = False
    draws: int = 1


async def draw_novel(
    novelty: NoveltyService,
    model: str,
    max_copied: int,
    first: Sample,
    first_rng: int,
    draw: Callable[[int], Awaitable[Kept | None]],
) -> Drawn:
    """Keep `first` unless it copies more than `max_copied` tokens (0: off); then draw again
    with fresh rng seeds, at most REDRAWS times, and keep the first draw that does not
    (or the last one, flagged). `draw` returns the sample with the rng seed that drew it (its
    own redraw of a text that is not whole may have used another), or None when the queue
    refused (it said why)."""
    found = novelty.check(model, first.token_ids)
    kept = Drawn(first, first_rng, found)
    if not max_copied:
        return kept
    draws = 1
    while kept.novelty is not None and kept.novelty.longest_copied > max_copied:
        if draws > REDRAWS:
            return Drawn(kept.sample, kept.rng_seed, kept.novelty, every_draw_copied=True, draws=draws)
        rng = secrets.randbits(63)
        again = await draw(rng)
        if again is None:
            return kept
        draws += 1
        kept = Drawn(again.sample, again.rng, novelty.check(model, again.sample.token_ids), draws=draws)
    return kept
