"""The challenger's sequential test (bot/promotion.py): valid when looked at after every vote."""

from __future__ import annotations

import numpy as np
import pytest

from bot.promotion import LOSS, TIE, WIN, Rules, judge

RULES = Rules(alpha=0.05, min_votes=30, max_votes=400)


def _challengers(p_win: float, p_tie: float, runs: int, seed: int) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    draws = rng.random((runs, RULES.max_votes))
    scores = np.where(draws < p_win, WIN, np.where(draws < p_win + p_tie, TIE, LOSS))
    return [list(row) for row in scores]


def test_an_equal_challenger_is_promoted_at_most_alpha_of_the_time_though_checked_every_vote() -> None:
    promoted = sum(judge(s, RULES).verdict == "promote" for s in _challengers(0.4, 0.2, 2000, seed=1))
    assert promoted / 2000 <= RULES.alpha  # Ville's inequality; typically far below
    # And the sequential look itself: the verdict at every prefix agrees with the first crossing.
    scores = _challengers(0.4, 0.2, 1, seed=2)[0]
    verdicts = [judge(scores[:n], RULES).verdict for n in range(1, len(scores) + 1)]
    decided = [v for v in verdicts if v != "continue"]
    assert not decided or all(v == decided[0] for v in decided)


def test_a_better_challenger_is_promoted_and_a_worse_one_retired() -> None:
    better = [judge(s, RULES) for s in _challengers(0.62, 0.06, 400, seed=3)]
    assert sum(s.verdict == "promote" for s in better) / 400 >= 0.9
    assert (
        np.median([int(s.reason.split(" after ")[1].split()[0]) for s in better if s.verdict == "promote"])
        < 200
    )
    worse = [judge(s, RULES) for s in _challengers(0.35, 0.1, 400, seed=4)]
    assert not any(s.verdict == "promote" for s in worse)
    assert sum(s.verdict == "retire" for s in worse) / 400 >= 0.9


def test_no_verdict_before_the_fewest_votes_and_retired_at_the_most() -> None:
    early = judge([WIN] * (RULES.min_votes - 1), RULES)
    assert early.verdict == "continue" and early.win_rate == 1.0
    assert judge([WIN] * RULES.min_votes, RULES).verdict == "promote"
    undecided = judge([WIN, LOSS] * (RULES.max_votes // 2), RULES)
    assert undecided.verdict == "retire" and "undecided after 400 votes" in undecided.reason
    assert judge([], RULES).verdict == "continue"


@pytest.mark.parametrize("bad", [[2.0], [-0.5]])
def test_scores_outside_zero_to_one_are_refused(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        judge(bad, RULES)
