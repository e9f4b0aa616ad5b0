"""The numba functions that call the C kernel by name (ImportError where it was not built).

Importing this module loads the kernel's library into LLVM's symbol table first: compiling (or
loading from the cache) the functions below resolves `lstmbot_qmatmul` there.
"""

from __future__ import annotations

import ctypes
from typing import Any

import llvmlite.binding as llvm
import numba
import numpy as np
from numba import types

from core import _qkernel  # type: ignore[attr-defined]
from core.kernels import F32, I8, IDX, U8, quantize_into

llvm.load_library_permanently(_qkernel.__file__)
_LIBRARY = ctypes.CDLL(_qkernel.__file__)
ISA = "AVX2" if _LIBRARY.lstmbot_qkernel_isa() == 2 else "plain loops"


def kernel_threads(wanted: int = 0) -> int:
    """Set how many threads share a big product (1 or 2; 0 only asks); return the setting."""
    return int(_LIBRARY.lstmbot_qkernel_threads(ctypes.c_int(wanted)))


_ROWS = "float32[:, ::1]"
_MATRIX = "int8[::1], float32[::1], float32[::1], int64"
# Pointers pass as int64: the same register on x86-64 and arm64, and numba gives `.ctypes.data`
# as an integer.
_P = types.int64
# Typed as Any: numba's stubs do not know that an ExternalFunction is callable in compiled code.
_qmatmul_c: Any = types.ExternalFunction("lstmbot_qmatmul", types.void(*[_P] * 11))
_cell_c: Any = types.ExternalFunction("lstmbot_lstm_cell", types.void(*[_P] * 6))


@numba.njit(f"void({_MATRIX}, uint8[:, ::1], {_ROWS}, int64[::1], {_ROWS})", cache=True, nogil=True)
def qmatmul_c(  # pragma: no cover - compiled
    packed: I8, scale: F32, corr: F32, cols: int, x: U8, table: F32, index: IDX, out: F32
) -> None:
    """`qmatmul_numba`'s contract, computed by the C kernel."""
    _qmatmul_c(
        packed.ctypes.data,
        scale.ctypes.data,
        corr.ctypes.data,
        scale.shape[0],
        cols,
        x.shape[1],
        x.ctypes.data,
        x.shape[0],
        table.ctypes.data,
        index.ctypes.data,
        out.ctypes.data,
    )


@numba.njit(
    f"UniTuple({_ROWS}, 2)({_MATRIX}, int64, {_ROWS}, {_ROWS}, {_ROWS}, {_ROWS}, int64[::1])",
    cache=True,
    nogil=True,
)
def lstm_layer_c(  # pragma: no cover - compiled
    packed: I8,
    scale: F32,
    corr: F32,
    cols: int,
    kpad: int,
    below: F32,
    h: F32,
    c: F32,
    table: F32,
    index: IDX,
) -> tuple[F32, F32]:
    """`lstm_layer_numba` with the product and the cell update in C."""
    batch = c.shape[0]
    x = np.zeros((batch, kpad), dtype=np.uint8)
    quantize_into(below, x, 0)
    quantize_into(h, x, below.shape[1])
    z = np.empty((batch, cols), dtype=np.float32)
    qmatmul_c(packed, scale, corr, cols, x, table, index, z)
    h_out = np.empty_like(c)
    c_out = np.empty_like(c)
    _cell_c(z.ctypes.data, c.ctypes.data, h_out.ctypes.data, c_out.ctypes.data, batch, c.shape[1])
    return h_out, c_out
