"""Bradley-Terry leaderboard: recovers known strengths, counts ties and "both bad" as promised."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bot.ranking import Outcome, Vote, fit_strengths, leaderboard, win_matrix

TRUE = {"t0.2": -0.9, "t0.5": 0.8, "t1.0": 0.3, "t1.2": -0.2}


def simulated_votes(n: int, rng: np.random.Generator) -> list[Vote]:
    """Voters who follow Bradley-Terry with the strengths in TRUE, every pair equally often."""
    pairs = list(itertools.combinations(TRUE, 2))
    votes = []
    for k in range(n):
        a, b = pairs[k % len(pairs)]
        p_a = 1 / (1 + np.exp(TRUE[b] - TRUE[a]))
        votes.append(Vote(a, b, Outcome.A if rng.random() < p_a else Outcome.B))
    return votes


def test_known_strengths_are_recovered_with_covering_intervals() -> None:
    rng = np.random.default_rng(7)
    board = leaderboard(simulated_votes(3000, rng), rng=rng, rounds=100)
    assert [row.arm for row in board] == sorted(TRUE, key=TRUE.__getitem__, reverse=True)
    mean_true = np.mean(list(TRUE.values()))
    for row in board:
        truth = TRUE[row.arm] - mean_true
        assert abs(row.strength - truth) < 0.15
        assert row.low <= truth <= row.high
        assert row.high - row.low < 0.5


def test_a_tie_is_half_a_win_each_way_and_both_bad_is_no_comparison() -> None:
    votes = [
        Vote("x", "y", Outcome.A),
        Vote("x", "y", Outcome.TIE),
        Vote("y", "x", Outcome.BOTH_BAD),
        Vote("y", "x", Outcome.B),
    ]
    wins = win_matrix(votes, ["x", "y"])
    assert wins.tolist() == [[0.0, 2.5], [0.5, 0.0]]
    board = {row.arm: row for row in leaderboard(votes, rounds=0)}
    assert board["x"].strength > board["y"].strength
    assert board["x"].duels == board["y"].duels == 4
    assert board["x"].both_bad_rate == pytest.approx(0.25)


def test_equal_arms_are_equal_and_an_empty_board_is_empty() -> None:
    votes = [Vote("x", "y", Outcome.A), Vote("x", "y", Outcome.B)]
    assert fit_strengths(win_matrix(votes, ["x", "y"])).tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    assert leaderboard([]) == []
    unvoted = leaderboard([], ["x", "y"])
    assert [row.strength for row in unvoted] == [0.0, 0.0]
