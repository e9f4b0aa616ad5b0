"""`sampling.draw` for the generator's hot path, compiled: temperature only, no top-k/top-p.

The numpy version costs ~100 us a step in small-array overhead, as much as the LSTM step itself
for one request. This computes the same distribution, softmax(z / T) with greedy rows below
GREEDY_BELOW and one masked token, drawing each row's token with its own uniform against the
cumulative sum, as `draw` does (the cumulative sum here is of exp(z/T - max) before normalising,
so a pick can differ from `draw`'s only where a uniform lands within rounding of a boundary).
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from core.sampling import GREEDY_BELOW


@numba.njit(
    "int64[::1](float32[:, ::1], float64[::1], float64[::1], int64)",
    cache=True,
    nogil=True,
    error_model="numpy",
)
def draw_plain(  # pragma: no cover - compiled
    logits: npt.NDArray[np.float32],
    temps: npt.NDArray[np.float64],
    uniforms: npt.NDArray[np.float64],
    masked: int,
) -> npt.NDArray[np.int64]:
    """One token id per row; `masked` (the unknown token) is never drawn.

    Raises ValueError for a row with no usable token (NaN or +inf anywhere, or all masked).
    """
    rows, vocab = logits.shape
    picks = np.empty(rows, dtype=np.int64)
    cdf = np.empty(vocab, dtype=np.float64)
    for r in range(rows):
        peak = -np.inf
        best = -1
        for v in range(vocab):
            z = np.float64(logits[r, v])
            if np.isnan(z) or z == np.inf:
                raise ValueError("logits must be finite or -inf (masked), with at least one finite per row")
            if v != masked and z > peak:
                peak = z
                best = v
        if best < 0:
            raise ValueError("logits must be finite or -inf (masked), with at least one finite per row")
        t = temps[r]
        if t < GREEDY_BELOW:
            picks[r] = best
            continue
        total = 0.0
        for v in range(vocab):
            if v != masked:
                # (z - peak) <= 0, so a small T can only reach exp(-inf) = 0, never overflow.
                total += np.exp((np.float64(logits[r, v]) - peak) / t)
            cdf[v] = total
        # Kept strictly below the total: u * total can round up to it, and the count would then
        # step past the last possible token onto a masked one.
        u = min(uniforms[r] * total, np.nextafter(total, 0.0))
        pick = 0
        while pick < vocab - 1 and cdf[pick] <= u:
            pick += 1
        picks[r] = pick
    return picks
