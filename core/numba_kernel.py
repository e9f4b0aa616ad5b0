"""The int8 LSTM step the generator runs with (no TensorFlow): weight layout, grid, numba kernel.

Each step of the shipped model reads ~3.2 million weights; as float32 that is 12.8 MB per token,
which is what bounded the old numpy loop. Stored as int8 with one float32 scale per output row,
it is 3.2 MB (it fits the L3 cache), read once per step for every row of the batch.

Activations (every LSTM h lies in [-1, 1]) go on a grid of 128 levels, as unsigned 7-bit
integers u = round((h + 1) * 63.5). That is what lets the C kernel (core/qkernel.c, see
core/lstm_step.py) use AVX2's vpmaddubsw exactly: a pair of u8 x s8 products is at most
2 * 127 * 127, inside its int16 sum. The grid costs nothing measurable: held-out loss on the
shipped model, every 20th character, 1.2841 nats/char in float32, 1.2838 with int8 weights and
7-bit activations. The sums are exact int32, so a row's result depends neither on the order of
the additions nor on which other rows share the batch: batched and one-by-one generation give
bit-identical logits.

This module holds the layout, the grid and the same product and cell in numba, which serve where
the C kernel was not built (slower, the same integers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I8 = npt.NDArray[np.int8]
U8 = npt.NDArray[np.uint8]
IDX = npt.NDArray[np.int64]

ROW_BLOCK = 16  # output rows per block of the kernel's layout
INPUT_QUAD = 4  # inputs per broadcast; kpad is a multiple of 2 quads
INPUT_PAD = 8
HALF_LEVELS = 63.5  # u = round((h + 1) * 63.5) in 0..127


@dataclass(frozen=True)
class QuantMatrix:
    """A weight matrix as int8 rows with one float32 scale each: W[j] ~= q[j] * row_scale[j].

    `packed` holds the rows in the kernel's layout: blocks of ROW_BLOCK rows (outputs padded with
    zero rows), and within a block, for each 4 inputs (padded with zeros to `kpad`), the 16 rows'
    4 weights one after another. For activations u on the grid, the product of row j is
    sum_k q[j, k] * u[k] * scale[j] - corr[j]: `scale` is row_scale / 63.5 and `corr` is
    row_scale * sum_k q[j, k] (the grid's offset of -1, folded in).
    """

    packed: I8  # 1-D, rows * kpad bytes
    scale: F32  # per row
    corr: F32  # per row
    outputs: int
    inputs: int
    kpad: int

    @classmethod
    def from_kernel(cls, kernel: npt.NDArray[np.floating]) -> QuantMatrix:
        """Quantise a Keras-style (inputs, outputs) kernel symmetrically, per output row."""
        w = np.asarray(kernel, dtype=np.float64).T
        outputs, inputs = w.shape
        peak = np.abs(w).max(axis=1)
        row_scale = np.where(peak > 0, peak / 127.0, 1.0)
        q = np.clip(np.rint(w / row_scale[:, None]), -127, 127).astype(np.int8)
        rows = -(-outputs // ROW_BLOCK) * ROW_BLOCK
        kpad = -(-inputs // INPUT_PAD) * INPUT_PAD
        q_pad = np.zeros((rows, kpad), dtype=np.int8)
        q_pad[:outputs, :inputs] = q
        blocks = q_pad.reshape(rows // ROW_BLOCK, ROW_BLOCK, kpad // INPUT_QUAD, INPUT_QUAD)
        scale = np.ones(rows, dtype=np.float64)
        scale[:outputs] = row_scale
        corr = scale * q_pad.sum(axis=1, dtype=np.int64)
        return cls(
            np.ascontiguousarray(blocks.transpose(0, 2, 1, 3)).reshape(-1),
            (scale / HALF_LEVELS).astype(np.float32),
            corr.astype(np.float32),
            outputs,
            inputs,
            kpad,
        )

    @property
    def rows(self) -> int:
        """Output rows including the zero padding (a multiple of ROW_BLOCK)."""
        return len(self.scale)

    def int8_rows(self) -> I8:
        """The weights back in row-major (outputs, inputs) order."""
        blocks = self.packed.reshape(self.rows // ROW_BLOCK, self.kpad // INPUT_QUAD, ROW_BLOCK, INPUT_QUAD)
        rows: I8 = blocks.transpose(0, 2, 1, 3).reshape(self.rows, self.kpad)
        return rows[: self.outputs, : self.inputs]

    def dequantized(self) -> F32:
        """The float32 (inputs, outputs) kernel these int8 rows stand for."""
        row_scale = self.scale[: self.outputs, None].astype(np.float64) * HALF_LEVELS
        w: F32 = (self.int8_rows() * row_scale).T.astype(np.float32)
        return np.ascontiguousarray(w)


_MATRIX = "int8[::1], float32[::1], float32[::1], int64"  # packed, scale, corr, cols
_ROWS = "float32[:, ::1]"


@numba.njit(f"void({_MATRIX}, uint8[:, ::1], {_ROWS}, int64[::1], {_ROWS})", cache=True, nogil=True)
def qmatmul_numba(  # pragma: no cover - compiled
    packed: I8, scale: F32, corr: F32, cols: int, x: U8, table: F32, index: IDX, out: F32
) -> None:
    """out[b, j] = (sum_k q[j, k] * x[b, k]) * scale[j] - corr[j] + table[index[b], j].

    The same integers and the same float operations as the C kernel, for machines where it was
    not built.
    """
    kpad = x.shape[1]
    for j in range(cols):
        base = (j // 16) * 16 * kpad + (j % 16) * 4
        for b in range(x.shape[0]):
            acc = np.int32(0)
            for k in range(0, kpad, 4):
                p = base + k * 16
                for i in range(4):
                    acc += np.int32(packed[p + i]) * np.int32(x[b, k + i])
            out[b, j] = np.float32(acc) * scale[j] - corr[j] + table[index[b], j]


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


@numba.njit(f"void({_ROWS}, uint8[:, ::1], int64)", cache=True, nogil=True)
def quantize_into(x: F32, out: U8, offset: int) -> None:  # pragma: no cover - compiled
    """out[:, offset:offset + k] = x on the 7-bit grid (round half to even, as np.rint)."""
    # Written so that LLVM vectorises it (8x faster than with min/max and x[b, i]): row views,
    # comparisons for the clamp and an int32 step before uint8. The same values for every finite x.
    low, high, one, half_levels = np.float32(-1.0), np.float32(1.0), np.float32(1.0), np.float32(HALF_LEVELS)
    for b in range(x.shape[0]):
        src = x[b]
        dst = out[b, offset : offset + x.shape[1]]
        for i in range(src.shape[0]):
            v = src[i]
            v = v if v > low else low
            v = v if v < high else high
            dst[i] = np.uint8(np.int32(np.rint((v + one) * half_levels)))


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


@numba.njit(f"uint8[:, ::1]({_ROWS}, {_ROWS}, int64)", cache=True, nogil=True)
def layer_inputs(below: F32, h: F32, kpad: int) -> U8:  # pragma: no cover - compiled
    """[below, h] on the 7-bit grid, zero-padded to kpad columns: one layer's product input."""
    x = np.zeros((h.shape[0], kpad), dtype=np.uint8)
    quantize_into(below, x, 0)
    quantize_into(h, x, below.shape[1])
    return x


def on_grid(x: F32) -> F32:
    """The float32 values the kernel actually multiplies: x rounded to the 7-bit grid."""
    u = np.rint((np.clip(x, -1.0, 1.0) + 1.0) * np.float32(HALF_LEVELS))
    out: F32 = (u / np.float32(HALF_LEVELS) - 1.0).astype(np.float32)
    return out


def padded_inputs(m: QuantMatrix, x: F32) -> U8:
    """x (batch, inputs) on the 7-bit grid, zero-padded to the matrix's kpad columns."""
    out = np.zeros((x.shape[0], m.kpad), dtype=np.uint8)
    quantize_into(np.ascontiguousarray(x, dtype=np.float32), out, 0)
    return out
