"""Constrained sampling: per step, a token to force or the tokens a draw may pick.

A `Schedule` rides on a `Request` and covers each of its steps. A forced step skips the choice
(the row still spends its uniform, so its rng stream is the same as without the constraint,
and batching never shifts it); an allowed-set step sets every other token's logit to -inf
before the temperature draw, so the draw renormalises over what is left. Both generation paths
(`Generator.iter_batch` and `RunningBatch.step`) call `constrain` then `force` around their
draw, so a constrained row batches with free ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
Allowed = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)  # eq=False: compared and hashed by identity (it holds arrays)
class Schedule:
    """One entry per step: `forced[t]` a token id (or None); else `allowed[t]` a mask (or None)."""

    forced: tuple[int | None, ...]
    allowed: tuple[Allowed | None, ...]

    def __post_init__(self) -> None:
        if len(self.forced) != len(self.allowed):
            raise ValueError("a schedule needs one forced entry and one allowed entry per step")
        for mask in self.allowed:
            if mask is not None and not mask.any():
                raise ValueError("an allowed set must hold at least one token")

    def __len__(self) -> int:
        return len(self.forced)

    def check_vocab(self, vocab_size: int) -> None:
        """ValueError when a forced id or a mask does not fit a vocabulary of this size."""
        if any(tok is not None and not 0 <= tok < vocab_size for tok in self.forced):
            raise ValueError(f"a forced token is outside the vocabulary of {vocab_size}")
        if any(mask is not None and mask.shape != (vocab_size,) for mask in self.allowed):
            raise ValueError(f"an allowed mask does not have the vocabulary's {vocab_size} entries")


Row = tuple[Schedule | None, int]  # a row's schedule and the step it is drawing now


def constrain(logits: F32, rows: Sequence[Row]) -> F32:
    """`logits` with each row's disallowed tokens at -inf (a copy; the same array if none is)."""
    masked = [
        (r, mask)
        for r, (schedule, step) in enumerate(rows)
        if schedule is not None and (mask := schedule.allowed[step]) is not None
    ]
    if not masked:
        return logits
    out = logits.copy()
    for r, mask in masked:
        out[r, ~mask] = -np.inf
    return out


def force(tokens: npt.NDArray[np.int64], rows: Sequence[Row]) -> npt.NDArray[np.int64]:
    """`tokens` with each row's forced token put in place of its draw (in place)."""
    for r, (schedule, step) in enumerate(rows):
        if schedule is not None and (tok := schedule.forced[step]) is not None:
            tokens[r] = tok
    return tokens
