"""The LSTM step through the C kernel (core/qkernel.c) where it was built, else through numba.

`pip install` builds core/qkernel.c as the extension module `core._qkernel` (optional: without
a C compiler the install still succeeds). Its library is loaded into LLVM's symbol table, so the
numba functions below call `lstmbot_qmatmul` by name; that keeps them cacheable on disk, which a
ctypes function pointer would not. Without the extension the same calls go to the numba product
in core/numba_kernel.py, which computes the same integers more slowly.
"""

from __future__ import annotations

import numpy as np

from core.numba_kernel import F32, IDX, QuantMatrix, cell_update, layer_inputs, padded_inputs, qmatmul_numba

try:
    from core.c_kernel import ISA, amx_calls, cell_c, kernel_threads, qmatmul_c
except ImportError:  # not built (no C compiler at install): the same integers from numba
    _qmatmul, _cell = qmatmul_numba, cell_update
    KERNEL = "numba (the C kernel was not built)"

    def threads(wanted: int = 0) -> int:
        """The numba product always runs on the calling thread."""
        return 1

    def tile_calls() -> int:
        """The numba product never uses AMX tiles."""
        return 0
else:
    _qmatmul, _cell = qmatmul_c, cell_c
    KERNEL = f"C, {ISA}"

    def threads(wanted: int = 0) -> int:
        """Set how many threads share a big product (1 or 2; 0 only asks); return the setting."""
        return kernel_threads(wanted)

    def tile_calls() -> int:
        """Product calls (or chunks of one) that have used AMX tiles in this process so far."""
        return amx_calls()


def lstm_layer(m: QuantMatrix, below: F32, h: F32, c: F32, table: F32, index: IDX) -> tuple[F32, F32]:
    """The new (h, c) of one layer; `below` is the layer underneath's h (no columns for layer 0)."""
    c_ = np.ascontiguousarray
    c = c_(c)
    z = np.empty((len(c), m.outputs), dtype=np.float32)
    _qmatmul(
        m.packed,
        m.scale,
        m.corr,
        m.outputs,
        layer_inputs(c_(below), c_(h), m.kpad),
        c_(table),
        c_(index, dtype=np.int64),
        z,
    )
    h_out, c_out = np.empty_like(c), np.empty_like(c)
    _cell(z, c, h_out, c_out)
    return h_out, c_out


def qmatmul(m: QuantMatrix, x: F32, table: F32, index: IDX) -> F32:
    """x @ W + table[index] for a batch of rows x in [-1, 1] (int8 weights, 7-bit inputs)."""
    out = np.empty((x.shape[0], m.outputs), dtype=np.float32)
    c_ = np.ascontiguousarray
    _qmatmul(  # type: ignore[operator]
        m.packed, m.scale, m.corr, m.outputs, padded_inputs(m, x), c_(table), c_(index, dtype=np.int64), out
    )
    return out
