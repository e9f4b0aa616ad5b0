"""The C kernel (core/qkernel.c, qsample.c, qsearch.c) called through ctypes (ImportError where it
was not built).

ctypes, not numba: numba and LLVM cost ~110 MB of resident memory, which a bot on a 512 MB
machine cannot spare, and a ctypes call (which releases the GIL, as the kernel needs) costs a
few microseconds against the ~100 us of a step. Every wrapper checks the dtype and layout of its
arrays, as a compiled signature would: the C functions trust their pointers.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

import numpy as np
import numpy.typing as npt

from core import _qkernel  # type: ignore[attr-defined]
from core.quant import F32, I8, IDX, U8

_LIBRARY = ctypes.CDLL(_qkernel.__file__)
_P, _N = ctypes.c_void_p, ctypes.c_int64


def _function(name: str, result: Any, *arguments: Any) -> Any:
    function = getattr(_LIBRARY, name)
    function.restype, function.argtypes = result, arguments
    return function


_qmatmul = _function("lstmbot_qmatmul", None, _P, _P, _P, _N, _N, _N, _P, _N, _P, _P, _P)
_cell = _function("lstmbot_lstm_cell", None, _P, _P, _P, _P, _N, _N)
_quantize = _function("lstmbot_quantize", None, _P, _N, _N, _P, _N, _N)
_draw = _function("lstmbot_draw_plain", _N, _P, _N, _N, _P, _P, _N, ctypes.c_double, _P, _P)
_matching = _function("lstmbot_matching_statistics", None, _P, _N, _P, _P, _N, _P, _N, _N, _P)
_LIBRARY.lstmbot_qkernel_amx_calls.restype = ctypes.c_long

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


def amx_calls() -> int:
    """How many product calls (or chunks of one) have used AMX tiles in this process so far."""
    return int(_LIBRARY.lstmbot_qkernel_amx_calls())


def kernel_threads(wanted: int = 0) -> int:
    """Set how many threads share a big product (1 or 2; 0 only asks); return the setting."""
    return int(_LIBRARY.lstmbot_qkernel_threads(ctypes.c_int(wanted)))


def _ptr(array: npt.NDArray[Any], dtype: type[np.generic], ndim: int) -> int:
    """The address of a C-contiguous array of `dtype` and `ndim` dimensions (TypeError if not)."""
    if array.dtype != dtype or array.ndim != ndim or not array.flags.c_contiguous:
        raise TypeError(
            f"expected a C-contiguous {ndim}-d {np.dtype(dtype)} array, got {array.dtype} {array.shape}"
        )
    return int(array.ctypes.data)


def qmatmul_c(packed: I8, scale: F32, corr: F32, cols: int, x: U8, table: F32, index: IDX, out: F32) -> None:
    """out[b, j] = (sum_k q[j, k] * x[b, k]) * scale[j] - corr[j] + table[index[b], j], j < cols."""
    rows, (batch, kpad) = len(scale), x.shape
    if packed.size != rows * kpad or len(corr) != rows or out.shape != (batch, cols) or len(index) != batch:
        raise ValueError("qmatmul: the arrays' shapes do not fit together")
    if table.shape[1] != cols:  # (index values are not checked: tokens drawn from this vocabulary)
        raise ValueError("qmatmul: the table has a column per output")
    _qmatmul(
        _ptr(packed, np.int8, 1), _ptr(scale, np.float32, 1), _ptr(corr, np.float32, 1), rows, cols, kpad,
        _ptr(x, np.uint8, 2), batch, _ptr(table, np.float32, 2), _ptr(index, np.int64, 1),
        _ptr(out, np.float32, 2),
    )  # fmt: skip


def cell_c(z: F32, c: F32, h_out: F32, c_out: F32) -> None:
    """The LSTM cell from its gate sums z (batch, 4 * units) and c (batch, units)."""
    batch, units = c.shape
    if z.shape != (batch, 4 * units) or h_out.shape != c.shape or c_out.shape != c.shape:
        raise ValueError("cell: the arrays' shapes do not fit together")
    _cell(
        _ptr(z, np.float32, 2), _ptr(c, np.float32, 2), _ptr(h_out, np.float32, 2),
        _ptr(c_out, np.float32, 2), batch, units,
    )  # fmt: skip


def quantize_into_c(x: F32, out: U8, offset: int) -> None:
    """out[:, offset:offset + k] = x (batch, k) on the 7-bit grid (round half to even)."""
    batch, k = x.shape
    if out.shape[0] != batch or not 0 <= offset <= out.shape[1] - k:
        raise ValueError("quantize: x does not fit in out at that offset")
    _quantize(_ptr(x, np.float32, 2), batch, k, _ptr(out, np.uint8, 2), out.shape[1], offset)


def layer_inputs_c(below: F32, h: F32, kpad: int) -> U8:
    """[below, h] on the 7-bit grid, zero-padded to kpad columns: one layer's product input."""
    x = np.zeros((h.shape[0], kpad), dtype=np.uint8)
    quantize_into_c(below, x, 0)
    quantize_into_c(h, x, below.shape[1])
    return x


def padded_inputs_c(kpad: int, x: F32) -> U8:
    """x (batch, inputs) on the 7-bit grid, zero-padded to kpad columns."""
    out = np.zeros((x.shape[0], kpad), dtype=np.uint8)
    quantize_into_c(np.ascontiguousarray(x, dtype=np.float32), out, 0)
    return out


def draw_plain_c(
    logits: F32,
    temps: npt.NDArray[np.float64],
    uniforms: npt.NDArray[np.float64],
    masked: int,
    greedy_below: float,
) -> IDX:
    """core/numba_draw.py's `draw_plain` in C: one token id per row, `masked` never drawn."""
    rows, vocab = logits.shape
    if len(temps) != rows or len(uniforms) != rows:
        raise ValueError("draw: one temperature and one uniform per row")
    picks = np.empty(rows, dtype=np.int64)
    scratch = np.empty(vocab, dtype=np.float64)
    status = _draw(
        _ptr(logits, np.float32, 2), rows, vocab, _ptr(temps, np.float64, 1), _ptr(uniforms, np.float64, 1),
        masked, greedy_below, _ptr(scratch, np.float64, 1), _ptr(picks, np.int64, 1),
    )  # fmt: skip
    if status:
        raise ValueError("logits must be finite or -inf (masked), with at least one finite per row")
    return picks


def matching_statistics_c(
    text: npt.NDArray[np.int32],
    suffixes: npt.NDArray[np.int64],
    query: npt.NDArray[np.int32],
    buckets: npt.NDArray[np.int64],
    vocab: int,
    depth: int,
) -> npt.NDArray[np.int64]:
    """For each i, the length of the longest prefix of query[i:] that occurs in text (see
    core/novelty.py); `suffixes` is text's suffix array, `buckets` where each prefix's begin."""
    if len(suffixes) != len(text) or len(buckets) != (vocab * (vocab + 1) if depth == 2 else vocab) + 1:
        raise ValueError("matching statistics: the index's arrays do not fit together")
    out = np.empty(len(query), dtype=np.int64)
    _matching(
        _ptr(text, np.int32, 1), len(text), _ptr(suffixes, np.int64, 1), _ptr(query, np.int32, 1), len(query),
        _ptr(buckets, np.int64, 1), vocab, depth, _ptr(out, np.int64, 1),
    )  # fmt: skip
    return out
