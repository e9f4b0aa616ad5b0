"""The LSTM step through the C kernel (core/qkernel.c) where it was built, else through numba.

`pip install` builds core/qkernel.c (with qsample.c, qsearch.c and the Python entry points of
qpython.c) as the extension module `core._qkernel` (optional: without a C compiler the install
still succeeds). core/c_kernel.py calls those entry points directly, so a server with the C
kernel never imports numba (~110 MB of LLVM and numba in the resident set). Without the
extension the same calls go to the numba functions of core/numba_kernel.py and
core/numba_draw.py, imported only then: the same integers, more slowly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from core.quant import F32, IDX, U8, QuantMatrix
from core.sampling import GREEDY_BELOW

_qmatmul: Callable[..., None]
_cell: Callable[[F32, F32, F32, F32], None]
_layer_inputs: Callable[[F32, F32, int], U8]
_padded_inputs: Callable[[int, F32], U8]
_draw: Callable[..., IDX]
_fused_layer: Callable[..., None] | None = None  # lstm_layer in one call (the C kernel only)
# A whole step (every layer, then the dense product) in one call, and many steps with their
# draws in one call: the C kernel only.
whole_step: Callable[..., None] | None = None
run_steps: Callable[..., None] | None = None

try:
    from core import c_kernel
except ImportError:  # not built (no C compiler at install): the same integers from numba
    from core import numba_draw, numba_kernel

    _qmatmul, _cell = numba_kernel.qmatmul_numba, numba_kernel.cell_update
    _layer_inputs = numba_kernel.layer_inputs

    def _padded_inputs(kpad: int, x: F32) -> U8:
        out = np.zeros((x.shape[0], kpad), dtype=np.uint8)
        numba_kernel.quantize_into(np.ascontiguousarray(x, dtype=np.float32), out, 0)
        return out

    def _draw(logits: F32, temps: Any, uniforms: Any, masked: int) -> IDX:
        return numba_draw.draw_plain(logits, temps, uniforms, masked)  # type: ignore[no-any-return]

    KERNEL = "numba (the C kernel was not built)"

    def threads(wanted: int = 0) -> int:
        """The numba product always runs on the calling thread."""
        return 1

    def tile_calls() -> int:
        """The numba product never uses AMX tiles."""
        return 0
else:
    _qmatmul, _cell = c_kernel.qmatmul_c, c_kernel.cell_c
    _layer_inputs, _padded_inputs = c_kernel.layer_inputs_c, c_kernel.padded_inputs_c
    _fused_layer = c_kernel.lstm_layer_c
    whole_step = c_kernel.lstm_step_c
    run_steps = c_kernel.lstm_run_c

    def _draw(logits: F32, temps: Any, uniforms: Any, masked: int) -> IDX:
        return c_kernel.draw_plain_c(logits, temps, uniforms, masked, GREEDY_BELOW)

    KERNEL = f"C, {c_kernel.ISA}"

    def threads(wanted: int = 0) -> int:
        """Set how many threads share a big product (1 or 2; 0 only asks); return the setting."""
        return c_kernel.kernel_threads(wanted)

    def tile_calls() -> int:
        """Product calls (or chunks of one) that have used AMX tiles in this process so far."""
        return c_kernel.amx_calls()


def lstm_layer(
    m: QuantMatrix, below: F32, h: F32, c: F32, table: F32, index: IDX, backwards: bool = False
) -> tuple[F32, F32]:
    """The new (h, c) of one layer; `below` is the layer underneath's h (no columns for layer 0).
    `backwards`: the C kernel reads the weights from the last rows to the first, the same bytes
    (steps that alternate keep part of a big matrix in L2; see core/qpython.c, lstm_run)."""
    c_ = np.ascontiguousarray
    c = c_(c)
    h_out, c_out = np.empty_like(c), np.empty_like(c)
    if _fused_layer is not None:  # the C kernel: one call (a one-row step was ~40% Python)
        _fused_layer(
            m.packed,
            m.scale,
            m.corr,
            c_(below),
            c_(h),
            c,
            c_(table),
            c_(index, dtype=np.int64),
            h_out,
            c_out,
            backwards,
        )
        return h_out, c_out
    z = np.empty((len(c), m.outputs), dtype=np.float32)
    _qmatmul(
        m.packed,
        m.scale,
        m.corr,
        m.outputs,
        _layer_inputs(c_(below), c_(h), m.kpad),
        c_(table),
        c_(index, dtype=np.int64),
        z,
    )
    _cell(z, c, h_out, c_out)
    return h_out, c_out


def qmatmul(m: QuantMatrix, x: F32, table: F32, index: IDX, backwards: bool = False) -> F32:
    """x @ W + table[index] for a batch of rows x in [-1, 1] (int8 weights, 7-bit inputs);
    `backwards` as in `lstm_layer` (the C kernel only)."""
    out = np.empty((x.shape[0], m.outputs), dtype=np.float32)
    c_ = np.ascontiguousarray
    x_grid, index = padded_inputs(m, x), c_(index, dtype=np.int64)
    args = (m.packed, m.scale, m.corr, m.outputs, x_grid, c_(table), index, out)
    if backwards and _fused_layer is not None:
        _qmatmul(*args, True)
    else:
        _qmatmul(*args)
    return out


def padded_inputs(m: QuantMatrix, x: F32) -> U8:
    """x (batch, inputs) on the 7-bit grid, zero-padded to the matrix's kpad columns."""
    return _padded_inputs(m.kpad, x)


def draw_plain(
    logits: F32, temps: npt.NDArray[np.float64], uniforms: npt.NDArray[np.float64], masked: int
) -> IDX:
    """One token per row, softmax(z / T) with temperature only; `masked` is never drawn (see
    core/numba_draw.py, whose contract the C draw keeps)."""
    return _draw(logits, temps, uniforms, masked)
