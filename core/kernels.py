"""The int8 LSTM step the generator runs with (numba-compiled, no TensorFlow).

Each step of the shipped model reads ~3.2 million weights; as float32 that is 12.8 MB per token,
which is what bounded the old numpy loop. Stored as int8 with one float32 scale per output row,
it is 3.2 MB (it fits the L3 cache), read once per step for every row of the batch.

The product itself runs in the C kernel `core/qkernel.c` (AVX2 vpmaddwd, ~3x numba's best) where
`pip install` could build it, see core/qkernel.py; this module holds the weight layout, the gates
and the same product in numba, which serves where the C kernel is missing. Both compute the same
integers. Everything runs on the calling thread (nogil): the generator decides how many threads
share a batch (numba's own parallel regions stalled on a busy 2-core machine).

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

ROW_BLOCK = 4  # weight rows per panel
INPUT_BLOCK = 16  # inputs per vector of the kernel (a panel's inputs are padded to a multiple)
ACT_SCALE_MAX = 16383  # int16 steps per unit of activation (1/16383 ~ 6e-5: far below the noise)


@dataclass(frozen=True)
class QuantMatrix:
    """A weight matrix as int8 rows with one float32 scale each: W[j] ~= q[j] * scale[j].

    `panels` holds the rows in the kernel's layout: panels of ROW_BLOCK rows (outputs padded
    with zero rows), and within a panel, for each INPUT_BLOCK inputs (padded with zeros to
    `kpad`), the four rows' weights one after another, so a panel is one contiguous stream.
    """

    panels: I8  # 1-D, (rows / 4) * (kpad / 16) * 64 bytes
    scale: F32  # per row, already divided by act_scale
    outputs: int
    inputs: int
    kpad: int  # inputs padded to a multiple of INPUT_BLOCK
    act_scale: int  # inputs are rounded to multiples of 1 / act_scale

    @classmethod
    def from_kernel(cls, kernel: npt.NDArray[np.floating]) -> QuantMatrix:
        """Quantise a Keras-style (inputs, outputs) kernel symmetrically, per output row."""
        w = np.asarray(kernel, dtype=np.float64).T
        outputs, inputs = w.shape
        peak = np.abs(w).max(axis=1)
        scale = np.where(peak > 0, peak / 127.0, 1.0)
        q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
        rows = -(-outputs // ROW_BLOCK) * ROW_BLOCK
        kpad = -(-inputs // INPUT_BLOCK) * INPUT_BLOCK
        q_pad = np.zeros((rows, kpad), dtype=np.int8)
        q_pad[:outputs, :inputs] = q
        panels = q_pad.reshape(rows // ROW_BLOCK, ROW_BLOCK, kpad // INPUT_BLOCK, INPUT_BLOCK)
        # The largest step count for which inputs * 127 * act_scale fits an int32 sum.
        act_scale = min(ACT_SCALE_MAX, (2**31 - 1) // (127 * max(1, kpad)))
        scale_pad = np.ones(rows, dtype=np.float64)
        scale_pad[:outputs] = scale
        return cls(
            np.ascontiguousarray(panels.transpose(0, 2, 1, 3)).reshape(-1),
            (scale_pad / act_scale).astype(np.float32),
            outputs,
            inputs,
            kpad,
            act_scale,
        )

    @property
    def rows(self) -> int:
        """Output rows including the zero padding (a multiple of ROW_BLOCK)."""
        return len(self.scale)

    def int8_rows(self) -> I8:
        """The weights back in row-major (outputs, inputs) order."""
        blocks = self.panels.reshape(self.rows // ROW_BLOCK, self.kpad // INPUT_BLOCK, ROW_BLOCK, INPUT_BLOCK)
        rows: I8 = blocks.transpose(0, 2, 1, 3).reshape(self.rows, self.kpad)
        return rows[: self.outputs, : self.inputs]

    def dequantized(self) -> F32:
        """The float32 (inputs, outputs) kernel these int8 rows stand for."""
        scale = self.scale[: self.outputs, None].astype(np.float64) * self.act_scale
        w: F32 = (self.int8_rows() * scale).T.astype(np.float32)
        return np.ascontiguousarray(w)


# Explicit signatures compile (or load from the cache) at import, not on the first request, where
# numba would hold the GIL for a second or more and stall the bot's event loop.
_MATRIX = "int8[::1], float32[::1], int64"  # panels, scale, cols (the real outputs)
_ROWS = "float32[:, ::1]"


@numba.njit(f"void({_MATRIX}, int16[:, ::1], {_ROWS}, int64[::1], {_ROWS})", cache=True, nogil=True)
def qmatmul_numba(  # pragma: no cover - compiled
    panels: I8, scale: F32, cols: int, x: I16, table: F32, index: IDX, out: F32
) -> None:
    """out[b, j] = (sum_i W[j, i] * x[b, i]) * scale[j] + table[index[b], j], on the panels.

    The same integers as the C kernel (exact int32 sums), for machines where it was not built.
    Each (row, batch row) sum has one accumulator: that is the loop LLVM turns into vpmaddwd.
    """
    kpad = x.shape[1]
    for j in range(scale.shape[0]):
        if j >= cols:
            break
        base = (j // 4) * 4 * kpad + (j % 4) * 16
        for b in range(x.shape[0]):
            acc = np.int32(0)
            for kb in range(0, kpad, 16):
                p = base + kb * 4
                for i in range(16):
                    acc += np.int32(np.int16(panels[p + i]) * x[b, kb + i])
            out[b, j] = np.float32(acc) * scale[j] + table[index[b], j]


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
def quantize_into(x: F32, act_scale: int, out: I16, offset: int) -> None:  # pragma: no cover
    """out[:, offset:offset + k] = x on the int16 grid (round half to even, as np.rint)."""
    s = np.float32(act_scale)
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            v = min(max(x[b, i], np.float32(-1.0)), np.float32(1.0))
            out[b, offset + i] = np.int16(np.rint(v * s))


@numba.njit(f"void({_ROWS}, {_ROWS}, {_ROWS}, {_ROWS})", cache=True, nogil=True, fastmath=True)
def cell_update(z: F32, c: F32, h_out: F32, c_out: F32) -> None:  # pragma: no cover - compiled
    """The LSTM cell from its gate sums z (Keras order i, f, c, o; rows n*k .. n*(k+1)).

    sigmoid(x) = 0.5 tanh(x/2) + 0.5, so all four gates share one vectorised tanh.
    """
    batch, units = c.shape
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


@numba.njit(
    f"UniTuple({_ROWS}, 2)({_MATRIX}, int64, int64, {_ROWS}, {_ROWS}, {_ROWS}, {_ROWS}, int64[::1])",
    cache=True,
    nogil=True,
)
def lstm_layer_numba(  # pragma: no cover - compiled
    panels: I8,
    scale: F32,
    cols: int,
    kpad: int,
    act_scale: int,
    below: F32,
    h: F32,
    c: F32,
    table: F32,
    index: IDX,
) -> tuple[F32, F32]:
    """One LSTM layer step for a batch: the gate sums from [below, h], then the cell update."""
    batch = c.shape[0]
    x16 = np.zeros((batch, kpad), dtype=np.int16)
    quantize_into(below, act_scale, x16, 0)
    quantize_into(h, act_scale, x16, below.shape[1])
    z = np.empty((batch, cols), dtype=np.float32)
    qmatmul_numba(panels, scale, cols, x16, table, index, z)
    h_out = np.empty_like(c)
    c_out = np.empty_like(c)
    cell_update(z, c, h_out, c_out)
    return h_out, c_out


def quantize_inputs(x: F32, act_scale: int) -> I16:
    """Activations in [-1, 1] (every LSTM h is) as int16 steps of 1 / act_scale."""
    out: I16 = np.rint(np.clip(x, -1.0, 1.0) * np.float32(act_scale)).astype(np.int16)
    return out


def on_grid(x: F32, act_scale: int) -> F32:
    """The float32 values the kernel actually multiplies: x rounded to the int16 input grid."""
    out: F32 = quantize_inputs(x, act_scale).astype(np.float32) * np.float32(1.0 / act_scale)
    return out


def padded_inputs(m: QuantMatrix, x: F32) -> I16:
    """x (batch, inputs) on the int16 grid, zero-padded to the matrix's kpad columns."""
    x16 = np.zeros((x.shape[0], m.kpad), dtype=np.int16)
    quantize_into(np.ascontiguousarray(x, dtype=np.float32), m.act_scale, x16, 0)
    return x16
