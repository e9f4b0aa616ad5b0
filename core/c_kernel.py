"""The numba functions that call the C kernel by name (ImportError where it was not built).

Importing this module loads the kernel's library into LLVM's symbol table first: compiling (or
loading from the cache) the functions below resolves `lstmbot_qmatmul` there.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

import llvmlite.binding as llvm
import numba
from numba import types

from core import _qkernel  # type: ignore[attr-defined]
from core.numba_kernel import F32, I8, IDX, U8

llvm.load_library_permanently(_qkernel.__file__)
_LIBRARY = ctypes.CDLL(_qkernel.__file__)
ISA = {4: "AMX (AVX-512 VNNI under 8 rows)", 3: "AVX-512 VNNI", 2: "AVX2"}.get(
    _LIBRARY.lstmbot_qkernel_isa(), "plain loops"
)
_AMX = int(_LIBRARY.lstmbot_qkernel_amx())
# Whether this process may use AMX tiles, or why not (LSTMBOT_QKERNEL_ISA=3 or lower keeps them
# unused even where they may be).
AMX_STATE = (
    "usable"
    if _AMX == 1
    else "no AMX-INT8 on this CPU (or the kernel was built without it)"
    if _AMX == 0
    else f"Linux refused the AMX tile state (arch_prctl: {os.strerror(-_AMX)})"
)
_LIBRARY.lstmbot_qkernel_amx_calls.restype = ctypes.c_long


def amx_calls() -> int:
    """How many product calls (or chunks of one) have used AMX tiles in this process so far."""
    return int(_LIBRARY.lstmbot_qkernel_amx_calls())


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


@numba.njit(f"void({_ROWS}, {_ROWS}, {_ROWS}, {_ROWS})", cache=True, nogil=True)
def cell_c(z: F32, c: F32, h_out: F32, c_out: F32) -> None:  # pragma: no cover - compiled
    """`cell_update`'s contract, computed by the C kernel (AVX2, eight units at a time)."""
    _cell_c(z.ctypes.data, c.ctypes.data, h_out.ctypes.data, c_out.ctypes.data, c.shape[0], c.shape[1])
