"""bench/preferences.py at small sizes, against the real bot through the sandbox.

(a) simulated voters with hidden strengths: the leaderboard recovers their order. (b) the
loop's parts short of training (a TensorFlow fine-tune is the full benchmark's job): the
scripted rater's taste, its ratings exported as KTO, and its judging of duels between two models.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from bench import preferences as bp
from tests.e2e.conftest import Harness

pytestmark = pytest.mark.slow

STRENGTHS = {"tiny-char@0.2": 1.5, "tiny-char@1.2": -0.5, "tiny-two@0.2": 0.5, "tiny-two@1.2": -1.5}


@pytest.fixture
def bot_settings() -> dict[str, Any]:
    return {"duel_temperatures": (0.2, 1.2), "duel_min_vote_s": 0.0}


async def test_leaderboard_recovers_hidden_strengths(harness: Harness) -> None:
    # The votes and the bot's pairing are random, so the run is not the same twice. A
    # simulation of this fit (balanced pairs, the voters' odds) over 10,000 runs: with 240 votes
    # and doubled intervals, 1 run in about 750 failed (as CI once did: the strongest arm fit
    # +2.51 against +1.50); with 360 votes and tripled intervals, none did.
    result = await bp.recover(harness.sb, harness.db, STRENGTHS, votes=360, voters=8, seed=3)
    print(result.report())
    assert result.votes == 360 and result.tau == pytest.approx(1.0)
    # The 95% intervals miss now and then by design (1 arm in 20); tripled, they must all hold.
    for row in result.board:
        low, high = row.strength - 3 * (row.strength - row.low), row.strength + 3 * (row.high - row.strength)
        assert low <= result.truth[row.arm] <= high, row


def test_taste_prefers_known_words_without_repeats() -> None:
    vocab = bp.vocabulary("The will to power; the free spirit is free.")
    assert bp.taste("the free spirit.", vocab) == 1.0
    assert bp.taste("the frxx spirit.", vocab) == pytest.approx(2 / 3)
    assert bp.taste("the free spirit the free spirit.", vocab) == pytest.approx(1 - 1 / 4)
    assert bp.taste("the free spir", vocab) == 1.0  # a word cut by the length limit is not judged
    assert bp.taste("", vocab) == 0.0


def test_theme_counts_favourite_words_only() -> None:
    vocab = bp.vocabulary("The will to power; the free spirit is free.")
    assert bp.theme("the free spirit.", vocab) == 0.0  # known words, but none of the theme
    assert bp.theme("good and evil: the moral truth, not mora", vocab) == 4.0  # `mora` is cut
    assert bp.theme("God is dead. God remains dead.", vocab) == 2.0  # each use counts
    assert bp.theme("the godless evils", vocab) == 0.0  # whole words only
    assert bp.theme("", vocab) == 0.0
    assert bp.THEME_WORDS.isdisjoint({"soul", "spirit", "conscience"})  # cold samples loop on them


def test_each_taste_likes_from_its_threshold() -> None:
    vocab = bp.vocabulary("The will to power; the free spirit is free and good.")
    for name, text in (("vocabulary", "the free spirit."), ("theme", "the good and free spirit is good.")):
        score, like_at = bp.TASTES[name]
        assert score(text, vocab) >= like_at, name
        assert score("xq zz vv.", vocab) < like_at, name


def test_rate_temperatures_option() -> None:
    assert bp.temperatures_arg("1.0") == (1.0,)
    assert bp.temperatures_arg("1,1.2") == (1.0, 1.2)
    for bad in ("", "hot", "1.0,-1", "nan"):
        with pytest.raises(argparse.ArgumentTypeError):
            bp.temperatures_arg(bad)


async def test_rater_ratings_become_kto_and_judge_duels(harness: Harness, tmp_path: Path) -> None:
    def judge(text: str) -> float:
        return float(text.count("e"))  # any deterministic taste will do here

    liked, disliked = await bp.rate_samples(
        harness.sb, harness.db, judge, samples=8, temperatures=(0.2, 1.2), like_at=3, length=30
    )
    assert liked + disliked == 8
    rows = await bp.export_kto(harness.db, tmp_path / "kto.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "kto.jsonl").read_text().splitlines()]
    assert rows == len(lines) == 8 and sum(r["label"] for r in lines) == liked
    assert all(r["label"] == (judge(r["completion"]) >= 3) for r in lines)
    # the rater asks for the temperatures in equal shares, in order
    assert [r["temperature"] for r in lines] == [0.2] * 4 + [1.2] * 4
    wins, losses, ties = await bp.judge_duels(
        harness.sb, harness.db, judge, duels=6, tuned="tiny-two", length=30
    )
    assert wins + losses + ties == 6


async def test_a_later_rater_judges_its_own_samples(harness: Harness, tmp_path: Path) -> None:
    """Message ids count per chat: a second rater's samples share message ids with the first's,
    and each rating must still follow the text of the sample it was given on (bench.learn's later
    rounds once labelled their samples by round 1's texts)."""

    def judge(text: str) -> float:
        return float(sum(text.count(v) for v in "aeiou"))  # likes about half of tiny-char's

    for _ in range(2):  # two rounds, two raters, each in their own private chat
        await bp.rate_samples(
            harness.sb, harness.db, judge, samples=12, temperatures=(1.2,), like_at=6, length=30
        )
    await bp.export_kto(harness.db, tmp_path / "kto.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "kto.jsonl").read_text().splitlines()]
    assert len(lines) == 24
    assert [r["label"] for r in lines] == [judge(r["completion"]) >= 6 for r in lines]
