"""Bradley-Terry strengths of duel arms from pairwise votes, with bootstrap intervals.

An arm is one way of writing (a model at a temperature). Each counted duel vote says which of
two arms wrote better; a tie is half a win each way, and "both bad" is no comparison at all
(it is reported separately as a rate per arm). The fit is `choix`'s iterative Luce spectral
ranking on the dense win matrix, which accepts the half wins of ties.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import choix
import numpy as np
import numpy.typing as npt

# A little regularisation keeps an arm that never lost (or never won) at a finite strength.
ALPHA = 0.01
BOOTSTRAP_ROUNDS = 200


class Outcome(StrEnum):
    """What a voter said about a duel between arm A and arm B."""

    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "bad"


@dataclass(frozen=True)
class Vote:
    """One counted duel vote."""

    arm_a: str
    arm_b: str
    outcome: Outcome


@dataclass(frozen=True)
class ArmStrength:
    """An arm's place on the leaderboard."""

    arm: str
    strength: float  # Bradley-Terry log-strength, mean 0 over the arms
    low: float  # 95% bootstrap interval
    high: float
    duels: int  # votes that involved this arm, "both bad" included
    both_bad_rate: float  # share of this arm's duels judged "both bad"


def win_matrix(votes: Sequence[Vote], arms: Sequence[str]) -> npt.NDArray[np.float64]:
    """wins[i, j]: how often arm i beat arm j (ties count half each way)."""
    index = {arm: i for i, arm in enumerate(arms)}
    wins = np.zeros((len(arms), len(arms)))
    for vote in votes:
        a, b = index[vote.arm_a], index[vote.arm_b]
        if vote.outcome is Outcome.A:
            wins[a, b] += 1
        elif vote.outcome is Outcome.B:
            wins[b, a] += 1
        elif vote.outcome is Outcome.TIE:
            wins[a, b] += 0.5
            wins[b, a] += 0.5
    return wins


def fit_strengths(wins: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Bradley-Terry log-strengths (mean 0) from a win matrix."""
    if len(wins) < 2 or wins.sum() == 0:
        return np.zeros(len(wins))
    params = np.asarray(choix.ilsr_pairwise_dense(wins, alpha=ALPHA), dtype=np.float64)
    centred: npt.NDArray[np.float64] = params - params.mean()
    return centred


def leaderboard(
    votes: Sequence[Vote],
    arms: Sequence[str] | None = None,
    *,
    rounds: int = BOOTSTRAP_ROUNDS,
    rng: np.random.Generator | None = None,
) -> list[ArmStrength]:
    """Every arm's strength with a 95% bootstrap interval, strongest first."""
    names = list(arms) if arms is not None else sorted({v.arm_a for v in votes} | {v.arm_b for v in votes})
    if not names:
        return []
    strengths = fit_strengths(win_matrix(votes, names))
    rng = rng or np.random.default_rng()
    if votes and rounds > 0:
        # Resample whole votes with replacement and refit: the spread is the interval.
        resamples = (rng.integers(len(votes), size=len(votes)) for _ in range(rounds))
        draws = np.array([fit_strengths(win_matrix([votes[i] for i in pick], names)) for pick in resamples])
        low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    else:
        low = high = strengths
    duels = dict.fromkeys(names, 0)
    bad = dict.fromkeys(names, 0)
    for vote in votes:
        for arm in (vote.arm_a, vote.arm_b):
            duels[arm] += 1
            bad[arm] += vote.outcome is Outcome.BOTH_BAD
    board = [
        ArmStrength(
            arm=name,
            strength=float(strengths[i]),
            low=float(min(low[i], strengths[i])),
            high=float(max(high[i], strengths[i])),
            duels=duels[name],
            both_bad_rate=bad[name] / duels[name] if duels[name] else 0.0,
        )
        for i, name in enumerate(names)
    ]
    return sorted(board, key=lambda row: row.strength, reverse=True)
