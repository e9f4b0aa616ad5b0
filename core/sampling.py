"""Sampling the next token with a softmax temperature, as the book defines it, in log-space.

The book re-weights probabilities as p^(1/T) and renormalises. With logits z (log p up to a
constant) that is softmax(z / T), which we compute by subtracting the row maximum first, so
zero probabilities (-inf logits) and extreme temperatures never warn or overflow. Drawing
uses one uniform number per row against the cumulative sum, so there is no multinomial
"sum(pvals) > 1" failure from rounding.

Temperatures below `GREEDY_BELOW` are greedy: dividing by a subnormal T (1e-320) would
overflow to inf, and the distribution is one-hot long before that anyway.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating]
IntArray = npt.NDArray[np.int64]

# Below this temperature sampling is greedy. At T = 1e-6 a logit gap of 1e-3 already weighs
# e^-1000 = 0 against the best token, so nothing a model emits is lost by it.
GREEDY_BELOW = 1e-6


def check_temperature(temperature: float) -> float:
    """Return the temperature as a float, or raise ValueError if it is NaN, infinite or < 0."""
    value = float(temperature)
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
    return value


def check_top_k(top_k: int | None) -> int | None:
    """Validate top_k: None or 0 switch it off; otherwise a positive integer."""
    if top_k is None or top_k == 0:
        return None
    if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 0:
        raise ValueError(f"top_k must be a positive integer (0 or None: off), got {top_k!r}")
    return int(top_k)


def check_top_p(top_p: float | None) -> float | None:
    """Validate top_p: None or 1 switch it off; otherwise a number in (0, 1]."""
    if top_p is None:
        return None
    value = float(top_p)
    if math.isnan(value) or not 0 < value <= 1:
        raise ValueError(f"top_p must be a number in (0, 1], got {top_p!r}")
    return None if value == 1 else value


def log_probs(logits: FloatArray, temperature: float | FloatArray) -> FloatArray:
    """Log-probabilities of softmax(logits / T) per row; T may be a scalar or one per row.

    Rows with T < GREEDY_BELOW (0 included) get the greedy distribution (all mass on the arg-max).
    """
    z = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    temps = np.broadcast_to(np.asarray(temperature, dtype=np.float64), (z.shape[0],))
    for t in temps:
        check_temperature(float(t))
    return scaled_log_softmax(z, temps)


def scaled_log_softmax(z: FloatArray, temps: FloatArray) -> FloatArray:
    """`log_probs` for temperatures already checked (the generator's hot path).

    Raises ValueError for a row with no usable token (all -inf, or any NaN or +inf logit).
    """
    peak = z.max(axis=1, keepdims=True)  # NaN anywhere in a row makes its max NaN
    if not np.isfinite(peak).all():
        raise ValueError("logits must be finite or -inf (masked), with at least one finite per row")
    greedy = temps < GREEDY_BELOW
    # Shift first, then divide: (z - peak) <= 0, so dividing by a small T can only reach -inf
    # (probability 0), never overflow to +inf and NaN. Greedy rows are replaced below.
    with np.errstate(over="ignore"):  # a gap wider than the float range is a zero weight
        shifted = (z - peak) / np.where(greedy, 1.0, temps)[:, None]
    out: FloatArray = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    if greedy.any():
        hot = np.full_like(out[greedy], -np.inf)
        hot[np.arange(hot.shape[0]), z[greedy].argmax(axis=1)] = 0.0
        out[greedy] = hot
    return out


def reweight(probs: FloatArray, temperature: float) -> FloatArray:
    """The book's `reweight_distribution`: p^(1/T) renormalised, computed in log-space."""
    p = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore"):  # log(0) = -inf is exactly what we want here
        logits = np.log(p)
    return np.exp(log_probs(logits, temperature)).reshape(p.shape)


def _apply_top_k(logp: FloatArray, top_k: int) -> None:
    """Keep each row's `top_k` most likely tokens (in place)."""
    if top_k >= logp.shape[1]:
        return
    kth = np.partition(logp, -top_k, axis=1)[:, -top_k][:, None]
    logp[logp < kth] = -np.inf


def _apply_top_p(logp: FloatArray, top_p: float) -> None:
    """Keep the smallest set of most likely tokens whose mass reaches `top_p` (in place)."""
    order = np.argsort(-logp, axis=1)
    sorted_p = np.exp(np.take_along_axis(logp, order, axis=1))
    # A token is kept when the mass before it is still short of top_p (the top one always is).
    before = np.cumsum(sorted_p, axis=1) - sorted_p
    drop = np.zeros_like(logp, dtype=bool)
    np.put_along_axis(drop, order, before >= top_p, axis=1)
    logp[drop] = -np.inf


def sample_batch(
    logits: FloatArray,
    temperatures: Sequence[float] | FloatArray,
    rngs: Sequence[np.random.Generator],
    *,
    top_k: int | None = None,
    top_p: float | None = None,
) -> IntArray:
    """Draw one token id per row of `logits`, each row with its own temperature and rng."""
    z = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    if len(rngs) != z.shape[0]:
        raise ValueError(f"need one rng per row: {len(rngs)} rngs for {z.shape[0]} rows")
    temps = np.array([check_temperature(t) for t in np.broadcast_to(temperatures, (z.shape[0],))])
    uniforms = np.array([rng.random() for rng in rngs])
    return draw(z, temps, uniforms, top_k=check_top_k(top_k), top_p=check_top_p(top_p))


def draw(
    z: FloatArray,
    temps: FloatArray,
    uniforms: FloatArray,
    *,
    top_k: int | None = None,
    top_p: float | None = None,
) -> IntArray:
    """Pick one id per row from logits `z` with checked settings and one uniform [0, 1) per row."""
    logp = scaled_log_softmax(z, temps)
    if top_k is not None:
        _apply_top_k(logp, top_k)
    if top_p is not None:
        _apply_top_p(logp, top_p)
    cdf = np.cumsum(np.exp(logp), axis=1)
    # Scale each draw by the row's own total, kept strictly below it: u * total can round up to
    # the total, and the count below would then step past the last possible token onto a
    # masked one.
    total = cdf[:, -1]
    u = np.minimum(uniforms * total, np.nextafter(total, 0.0))
    picks: IntArray = np.minimum((cdf <= u[:, None]).sum(axis=1), z.shape[1] - 1).astype(np.int64)
    return picks


def sample(
    logits: FloatArray,
    temperature: float,
    rng: np.random.Generator,
    *,
    top_k: int | None = None,
    top_p: float | None = None,
) -> int:
    """Draw one token id from a single row of logits."""
    return int(sample_batch(np.atleast_2d(logits), [temperature], [rng], top_k=top_k, top_p=top_p)[0])


def sample_from_probs(
    probs: FloatArray,
    temperature: float,
    rng: np.random.Generator,
    *,
    top_k: int | None = None,
    top_p: float | None = None,
) -> int:
    """The book's `sample(preds, temperature)`: draw from probabilities re-weighted by T."""
    p = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore"):
        logits = np.log(p)
    return sample(logits, temperature, rng, top_k=top_k, top_p=top_p)
