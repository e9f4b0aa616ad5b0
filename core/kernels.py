"""The int8 matrix kernel the generator steps with (compiled by numba, no TensorFlow).

Each step of the shipped model reads ~3.2 million weights; as float32 that is 12.8 MB per token,
which is what bounded the old numpy loop. Stored as int8 with one float32 scale per output row,
it is 3.2 MB (fits the L3 cache), and the kernel below reads it once per step for every row of
the batch. It runs on one thread: numba's parallel regions stalled on a busy 2-core machine
(30x slower when another process held a core) and are not safe to enter from several threads;
the other core serves the event loop (numba releases the GIL: nogil).

Inputs (every LSTM h lies in [-1, 1]) are rounded to int16 and the sums are exact int32, so a
row's result does not depend on the order of the additions nor on which other rows share the
batch: batched and one-by-one generation give bit-identical logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I8 = npt.NDArray[np.int8]
IDX = npt.NDArray[np.int64]
I16 = npt.NDArray[np.int16]

ROW_BLOCK = 4  # output rows computed together
ACT_SCALE_MAX = 16383  # int16 steps per unit of activation (1/16383 ~ 6e-5: far below the noise)


@dataclass(frozen=True)
class QuantMatrix:
    """A weight matrix as int8 rows with one float32 scale each: W[j] ~= q[j] * scale[j].

    `q` has shape (outputs padded to ROW_BLOCK, inputs): the kernel's row-major layout.
    """

    q: I8
    scale: F32  # per row, already divided by act_scale
    outputs: int
    act_scale: int  # inputs are rounded to multiples of 1 / act_scale

    @classmethod
    def from_kernel(cls, kernel: npt.NDArray[np.floating]) -> QuantMatrix:
        """Quantise a Keras-style (inputs, outputs) kernel symmetrically, per output row."""
        w = np.asarray(kernel, dtype=np.float64).T
        outputs = w.shape[0]
        peak = np.abs(w).max(axis=1)
        scale = np.where(peak > 0, peak / 127.0, 1.0)
        q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
        padded = -(-outputs // ROW_BLOCK) * ROW_BLOCK
        q_pad = np.zeros((padded, w.shape[1]), dtype=np.int8)
        q_pad[:outputs] = q
        # The largest step count for which inputs * 127 * act_scale fits an int32 sum.
        act_scale = min(ACT_SCALE_MAX, (2**31 - 1) // (127 * max(1, w.shape[1])))
        scale_pad = np.ones(padded, dtype=np.float64)
        scale_pad[:outputs] = scale
        return cls(q_pad, (scale_pad / act_scale).astype(np.float32), outputs, act_scale)

    def dequantized(self) -> F32:
        """The float32 (inputs, outputs) kernel these int8 rows stand for."""
        scale = self.scale[: self.outputs, None].astype(np.float64) * self.act_scale
        w: F32 = (self.q[: self.outputs] * scale).T.astype(np.float32)
        return np.ascontiguousarray(w)


# Explicit signatures compile (or load from the cache) at import, not on the first request, where
# numba would hold the GIL for a second or more and stall the bot's event loop.
_MATRIX = "int8[:, ::1], float32[::1]"
_ROWS = "float32[:, ::1]"


@numba.njit(f"void({_MATRIX}, int16[:, ::1], {_ROWS}, int64[::1], {_ROWS})", cache=True, nogil=True)
def _qmatmul(  # pragma: no cover - compiled
    q: I8, scale: F32, x: I16, table: F32, index: IDX, out: F32
) -> None:
    """out[b, j] = (sum_i q[j, i] * x[b, i]) * scale[j] + table[index[b], j].

    The sums are int32 (exact), written so LLVM emits vpmaddwd (16 products per instruction);
    numba widens int32 arithmetic to int64 unless each partial sum is cast back, hence the casts.
    Four weight rows stay in L1 while every batch row passes over them.
    """
    rows, inputs = q.shape
    cols = out.shape[1]
    for block in range(rows // 4):
        j = block * 4
        for b in range(x.shape[0]):
            a0 = np.int32(0)
            a1 = np.int32(0)
            a2 = np.int32(0)
            a3 = np.int32(0)
            for i in range(inputs):
                xi = np.int32(x[b, i])
                a0 = np.int32(a0 + np.int32(q[j, i]) * xi)
                a1 = np.int32(a1 + np.int32(q[j + 1, i]) * xi)
                a2 = np.int32(a2 + np.int32(q[j + 2, i]) * xi)
                a3 = np.int32(a3 + np.int32(q[j + 3, i]) * xi)
            r = index[b]
            sums = (a0, a1, a2, a3)
            for k in range(4):
                if j + k < cols:
                    out[b, j + k] = np.float32(sums[k]) * scale[j + k] + table[r, j + k]


@numba.njit("float32(float32)", cache=True, nogil=True, fastmath=True)
def _tanh(x: np.float32) -> np.float32:  # pragma: no cover - compiled
    """tanh as Eigen's rational approximation (max error a few float32 ulp): pure arithmetic,
    so the gate loop vectorises, where libm's tanhf would be one call per element."""
    x = np.float32(min(max(x, np.float32(-7.9053111)), np.float32(7.9053111)))
    x2 = x * x
    p = np.float32(-2.76076847742355e-16)
    p = p * x2 + np.float32(2.00018790482477e-13)
    p = p * x2 + np.float32(-8.60467152213735e-11)
    p = p * x2 + np.float32(5.12229709037114e-08)
    p = p * x2 + np.float32(1.48572235717979e-05)
    p = p * x2 + np.float32(6.37261928875436e-04)
    p = p * x2 + np.float32(4.89352455891786e-03)
    q = np.float32(1.19825839466702e-06)
    q = q * x2 + np.float32(1.18534705686654e-04)
    q = q * x2 + np.float32(2.26843463243900e-03)
    q = q * x2 + np.float32(4.89352518554385e-03)
    return np.float32(x * p / q)


@numba.njit(f"void({_ROWS}, int64, int16[:, ::1], int64)", cache=True, nogil=True)
def _quantize_into(x: F32, act_scale: int, out: I16, offset: int) -> None:  # pragma: no cover
    """out[:, offset:offset + k] = x on the int16 grid (round half to even, as np.rint)."""
    s = np.float32(act_scale)
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            v = min(max(x[b, i], np.float32(-1.0)), np.float32(1.0))
            out[b, offset + i] = np.int16(np.rint(v * s))


@numba.njit(
    f"UniTuple({_ROWS}, 2)({_MATRIX}, int64, {_ROWS}, {_ROWS}, {_ROWS}, {_ROWS}, int64[::1])",
    cache=True,
    nogil=True,
    fastmath=True,
)
def _lstm_layer(  # pragma: no cover - compiled
    q: I8, scale: F32, act_scale: int, below: F32, h: F32, c: F32, table: F32, index: IDX
) -> tuple[F32, F32]:
    """One LSTM layer step for a batch: the gate sums from [below, h], then the cell update.

    Gates are in Keras order i, f, c, o (rows n*k .. n*(k+1)); sigmoid(x) = 0.5 tanh(x/2) + 0.5.
    """
    batch, units = c.shape
    x16 = np.empty((batch, below.shape[1] + h.shape[1]), dtype=np.int16)
    _quantize_into(below, act_scale, x16, 0)
    _quantize_into(h, act_scale, x16, below.shape[1])
    z = np.empty((batch, 4 * units), dtype=np.float32)
    _qmatmul(q, scale, x16, table, index, z)
    h_out = np.empty_like(c)
    c_out = np.empty_like(c)
    half = np.float32(0.5)
    for b in range(batch):
        for u in range(units):
            i = half * _tanh(half * z[b, u]) + half
            f = half * _tanh(half * z[b, units + u]) + half
            g = _tanh(z[b, 2 * units + u])
            o = half * _tanh(half * z[b, 3 * units + u]) + half
            cell = f * c[b, u] + i * g
            c_out[b, u] = cell
            h_out[b, u] = o * _tanh(cell)
    return h_out, c_out


def lstm_layer(m: QuantMatrix, below: F32, h: F32, c: F32, table: F32, index: IDX) -> tuple[F32, F32]:
    """The new (h, c) of one layer; `below` is the layer underneath's h (no columns for layer 0)."""
    c_ = np.ascontiguousarray
    return _lstm_layer(  # type: ignore[no-any-return]
        m.q, m.scale, m.act_scale, c_(below), c_(h), c_(c), c_(table), c_(index, dtype=np.int64)
    )


def quantize_inputs(x: F32, act_scale: int) -> I16:
    """Activations in [-1, 1] (every LSTM h is) as int16 steps of 1 / act_scale."""
    out: I16 = np.rint(np.clip(x, -1.0, 1.0) * np.float32(act_scale)).astype(np.int16)
    return out


def on_grid(x: F32, act_scale: int) -> F32:
    """The float32 values the kernel actually multiplies: x rounded to the int16 input grid."""
    out: F32 = quantize_inputs(x, act_scale).astype(np.float32) * np.float32(1.0 / act_scale)
    return out


def qmatmul(m: QuantMatrix, x: F32, table: F32, index: IDX) -> F32:
    """x @ W + table[index] for a batch of rows x in [-1, 1] (int8 weights, int16 inputs)."""
    out = np.empty((x.shape[0], m.outputs), dtype=np.float32)
    x16 = np.empty(x.shape, dtype=np.int16)
    _quantize_into(np.ascontiguousarray(x), m.act_scale, x16, 0)
    _qmatmul(m.q, m.scale, x16, np.ascontiguousarray(table), np.ascontiguousarray(index, dtype=np.int64), out)
    return out
