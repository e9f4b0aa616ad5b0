"""The int8 product, the 7-bit grid and the LSTM cell in numba: where the C kernel was not built.

The same integers as the C kernel (core/qkernel.c), more slowly; core/quant.py holds the weight
layout and the grid they share. Imported only where the C kernel is missing (core/lstm_step.py):
numba and LLVM cost ~110 MB of resident memory that a server with the C kernel does not need.
"""

from __future__ import annotations

import numba
import numpy as np

from core.quant import F32, HALF_LEVELS, I8, IDX, U8, QuantMatrix, on_grid

__all__ = ["QuantMatrix", "cell_update", "layer_inputs", "on_grid", "padded_inputs", "qmatmul_numba"]

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


def padded_inputs(m: QuantMatrix, x: F32) -> U8:
    """x (batch, inputs) on the 7-bit grid, zero-padded to the matrix's kpad columns."""
    out = np.zeros((x.shape[0], m.kpad), dtype=np.uint8)
    quantize_into(np.ascontiguousarray(x, dtype=np.float32), out, 0)
    return out
