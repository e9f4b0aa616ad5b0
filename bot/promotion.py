"""When a challenger has beaten its champion: a sequential test valid at every vote.

Each counted blind duel between a challenger and its champion (same model, same temperature)
scores the challenger 1 for a win, 0 for a loss and 1/2 for a tie ("both bad" is no
comparison). Two tests by betting run side by side (Shafer 2021, "Testing by betting";
Waudby-Smith & Ramdas 2024, "Estimating means of bounded random variables by betting",
JRSS-B 86(1)):

- *promote* bets against "the challenger wins at most half": wealth ``∏ (1 + λ_i (x_i - ½))``
  with λ_i ∈ [0, 1] chosen from the votes before i only (the GRAPA rule, clipped);
- *retire* bets against "the challenger wins at least half": ``∏ (1 - λ_i (x_i - ½))``.

Under its null hypothesis each wealth is a nonnegative supermartingale starting at 1, so by
Ville's inequality it ever reaches ``1/α`` with probability at most α: the decision may be
looked at after every vote and stays valid. A verdict needs `min_votes` votes too (a few lucky
votes decide nothing a user would trust), and at `max_votes` an undecided challenger is
retired (not shown to be better). numpy alone; a few lines, no library fits better.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Verdict = Literal["promote", "retire", "continue"]
WIN, TIE, LOSS = 1.0, 0.5, 0.0
LAMBDA_MAX = 1.0  # below 2 (the bound that keeps wealth nonnegative): slower, never ruined


@dataclass(frozen=True)
class Rules:
    """The test's settings: error rate, and the fewest and most votes."""

    alpha: float = 0.05
    min_votes: int = 30
    max_votes: int = 400


@dataclass(frozen=True)
class Standing:
    """Where a challenger stands after its votes."""

    verdict: Verdict
    votes: int
    win_rate: float  # ties as half
    evidence_for: float  # wealth of the promote bet (reject "not better" at 1/alpha)
    evidence_against: float  # wealth of the retire bet (reject "better" at 1/alpha)
    reason: str


def _bets(centred: np.ndarray) -> np.ndarray:
    """GRAPA bets λ_i from the votes before i: mean / (variance + mean²) of x - ½, clipped."""
    count = np.arange(len(centred), dtype=np.float64)
    sums = np.concatenate(([0.0], np.cumsum(centred)[:-1]))
    squares = np.concatenate(([0.0], np.cumsum(centred**2)[:-1]))
    # A prior of one vote at +-½ keeps the first bets modest (no bet on no evidence).
    mean = sums / (count + 1)
    second = (squares + 0.25) / (count + 1)
    return mean / np.maximum(second, 1e-12)


def judge(scores: Sequence[float], rules: Rules = Rules()) -> Standing:
    """The verdict on a challenger from its duel scores against the champion, oldest first
    (1 win, ½ tie, 0 loss), checked after every vote."""
    x = np.asarray(scores, dtype=np.float64)
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError("scores are 0, 1/2 or 1")
    centred = x - 0.5
    bets = _bets(centred) if x.size else x
    up = np.cumprod(1 + np.clip(bets, 0, LAMBDA_MAX) * centred)
    down = np.cumprod(1 - np.clip(-bets, 0, LAMBDA_MAX) * centred)
    threshold = 1 / rules.alpha
    votes = int(x.size)
    win_rate = float(x.mean()) if votes else 0.5
    for_, against = (float(up[-1]), float(down[-1])) if votes else (1.0, 1.0)
    # The first vote (from min_votes on) at which either bet reached 1/alpha decides.
    crossed = np.flatnonzero(
        ((up >= threshold) | (down >= threshold)) & (np.arange(votes) + 1 >= rules.min_votes)
    )
    if crossed.size:
        at = int(crossed[0])
        verdict: Verdict = "promote" if up[at] >= threshold else "retire"
        word = "better" if verdict == "promote" else "not better"
        reason = f"{word} after {at + 1} votes (evidence {max(up[at], down[at]):.0f} ≥ {threshold:.0f})"
        return Standing(verdict, votes, win_rate, for_, against, reason)
    if votes >= rules.max_votes:
        reason = f"undecided after {rules.max_votes} votes: not shown to be better"
        return Standing("retire", votes, win_rate, for_, against, reason)
    return Standing("continue", votes, win_rate, for_, against, f"{votes} of at most {rules.max_votes} votes")


__all__ = ["LOSS", "TIE", "WIN", "Rules", "Standing", "Verdict", "judge"]
