"""Bradley-Terry strengths of duel arms from pairwise votes, with bootstrap intervals.

An arm is one way of writing (a model at a temperature). Each counted duel vote says which of
two arms wrote better; a tie is half a win each way, and "both bad" is no comparison at all
(it is reported separately as a rate per arm).

The fit is vectorised numpy: the votes are tallied once per (pair, outcome) cell, every
bootstrap round is one multinomial resample of those cells (the same distribution as
resampling whole votes with replacement), and all rounds are fitted together by Newton's
method on stacked win matrices. It solves the same equations as `choix`'s iterative Luce
spectral ranking with ``alpha`` regularisation (which this module used before): that fixed
point maximises the Bradley-Terry log-likelihood plus ``alpha * n * sum(theta - exp(theta))``
over the n arms' log-strengths theta, a strictly concave objective, so Newton converges to it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

import numpy as np
import numpy.typing as npt

from bot.db.outcomes import Outcome, Vote

# A little regularisation keeps an arm that never lost (or never won) at a finite strength.
ALPHA = 0.01
BOOTSTRAP_ROUNDS = 200


# Newton stops when no log-strength moves more than this (choix stopped at 1e-8, L1 norm).
TOLERANCE = 1e-10
MAX_ITERATIONS = 100
# A step longer than this (log odds) is shortened: the first steps from 0 can overshoot.
MAX_STEP = 2.0

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ArmStrength:
    """An arm's place on the leaderboard."""

    arm: str
    strength: float  # Bradley-Terry log-strength, mean 0 over the arms
    low: float  # 95% bootstrap interval
    high: float
    duels: int  # counted votes that involved this arm, "both bad" included (the "votes" column)
    both_bad_rate: float  # share of those votes that judged both texts bad


@dataclass(frozen=True)
class Tally:
    """The votes counted once, per cell: (first, second, tie) with a count, and per arm."""

    arms: list[str]
    size: int  # votes, "both bad" included
    first: npt.NDArray[np.intp]  # cell k: arm first[k] beat arm second[k] (or tied with it)
    second: npt.NDArray[np.intp]
    tie: npt.NDArray[np.bool_]
    count: npt.NDArray[np.int64]
    duels: npt.NDArray[np.int64]  # per arm
    both_bad: npt.NDArray[np.int64]  # per arm

    def wins(self, draws: npt.NDArray[np.int64] | None = None) -> Floats:
        """Win matrices [..., i, j] (how often arm i beat arm j) from votes per cell.

        `draws` holds, per matrix, a row of votes per cell (default: the tally's own counts,
        one matrix). Summed with bincount: a matmul would wake BLAS's threads for nothing.
        """
        n = len(self.arms)
        rows = self.count[None] if draws is None else draws
        # A cell adds to [first, second] (1, or 0.5 for a tie) and, for a tie, to [second, first].
        target = np.concatenate([self.first * n + self.second, self.second * n + self.first])
        share = np.concatenate([np.where(self.tie, 0.5, 1.0), np.where(self.tie, 0.5, 0.0)])
        where = (np.arange(len(rows))[:, None] * n * n + target).ravel()
        weights = (np.tile(rows, 2) * share).ravel()
        summed = np.bincount(where, weights, minlength=len(rows) * n * n).astype(np.float64, copy=False)
        wins: Floats = summed.reshape(len(rows), n, n)
        return wins if draws is not None else wins[0]


def tally(votes: Sequence[Vote], arms: Sequence[str] | None = None) -> Tally:
    """Count the votes per cell in one pass; `arms` defaults to every arm voted on, sorted."""
    # One C-level pass over the votes (no Python code per vote): the rest is per cell.
    counts = Counter(map(attrgetter("arm_a", "arm_b", "outcome"), votes))
    names = list(arms) if arms is not None else sorted({arm for key in counts for arm in key[:2]})
    index = {arm: i for i, arm in enumerate(names)}
    cells: Counter[tuple[int, int, bool]] = Counter()
    duels = np.zeros(len(names), dtype=np.int64)
    both_bad = np.zeros(len(names), dtype=np.int64)
    for (arm_a, arm_b, outcome), count in counts.items():
        a, b = index[arm_a], index[arm_b]
        duels[a] += count
        duels[b] += count
        if outcome == Outcome.BOTH_BAD:
            both_bad[a] += count
            both_bad[b] += count
        elif outcome == Outcome.TIE:
            cells[min(a, b), max(a, b), True] += count
        elif outcome == Outcome.A:
            cells[a, b, False] += count
        else:
            cells[b, a, False] += count
    keys = list(cells)
    return Tally(
        arms=names,
        size=len(votes),
        first=np.array([k[0] for k in keys], dtype=np.intp),
        second=np.array([k[1] for k in keys], dtype=np.intp),
        tie=np.array([k[2] for k in keys], dtype=np.bool_),
        count=np.array([cells[k] for k in keys], dtype=np.int64),
        duels=duels,
        both_bad=both_bad,
    )


def win_matrix(votes: Sequence[Vote], arms: Sequence[str]) -> Floats:
    """wins[i, j]: how often arm i beat arm j (ties count half each way)."""
    return tally(votes, arms).wins()


def bootstrap_wins(counted: Tally, rounds: int, rng: np.random.Generator) -> Floats:
    """`rounds` win matrices, each from `size` votes drawn with replacement.

    Drawing votes with replacement is one multinomial draw over the cells (plus one last cell
    for the votes that compare nothing, "both bad"): no Python loop over votes.
    """
    compared = int(counted.count.sum())
    shares = np.append(counted.count, counted.size - compared) / counted.size
    draws = rng.multinomial(counted.size, shares, size=rounds)[:, :-1]
    return counted.wins(draws)


def fit_many(wins: Floats) -> Floats:
    """Log-strengths (mean 0 per row) for a stack of win matrices, shape (rounds, n, n)."""
    rounds, n, _ = wins.shape
    wins = wins * (1 - np.eye(n))  # an arm against itself says nothing
    met = wins + wins.transpose(0, 2, 1)  # comparisons per pair
    won = wins.sum(axis=2)
    prior = ALPHA * n
    theta = np.zeros((rounds, n))
    diagonal = np.arange(n)
    for _ in range(MAX_ITERATIONS):
        p = 1 / (1 + np.exp(theta[:, None, :] - theta[:, :, None]))  # p[r, i, j]: P(i beats j)
        e = np.exp(theta)
        gradient = won - (met * p).sum(axis=2) + prior * (1 - e)
        curvature = met * p * (1 - p)
        # The negated Hessian: positive definite, as the prior adds to its diagonal.
        hessian = -curvature
        hessian[:, diagonal, diagonal] += curvature.sum(axis=2) + prior * e
        step = np.linalg.solve(hessian, gradient[:, :, None])[:, :, 0]
        longest = np.abs(step).max(axis=1, keepdims=True)
        theta += step * (MAX_STEP / np.maximum(longest, MAX_STEP))
        if longest.max() < TOLERANCE:
            break
    centred: Floats = theta - theta.mean(axis=1, keepdims=True)
    return centred


def fit_strengths(wins: Floats) -> Floats:
    """Bradley-Terry log-strengths (mean 0) from one win matrix."""
    strengths: Floats = fit_many(wins[None])[0]
    return strengths


def leaderboard(
    votes: Sequence[Vote],
    arms: Sequence[str] | None = None,
    *,
    rounds: int = BOOTSTRAP_ROUNDS,
    rng: np.random.Generator | None = None,
) -> list[ArmStrength]:
    """Every arm's strength with a 95% bootstrap interval, strongest first."""
    counted = tally(votes, arms)
    names = counted.arms
    if not names:
        return []
    strengths = fit_strengths(counted.wins())
    if counted.size and rounds > 0:
        draws = fit_many(bootstrap_wins(counted, rounds, rng or np.random.default_rng()))
        low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    else:
        low = high = strengths
    board = [
        ArmStrength(
            arm=name,
            strength=float(strengths[i]),
            low=float(min(low[i], strengths[i])),
            high=float(max(high[i], strengths[i])),
            duels=int(counted.duels[i]),
            both_bad_rate=float(counted.both_bad[i] / counted.duels[i]) if counted.duels[i] else 0.0,
        )
        for i, name in enumerate(names)
    ]
    return sorted(board, key=lambda row: row.strength, reverse=True)
