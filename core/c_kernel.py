"""The C kernel (core/qkernel.c, qsample.c, qsearch.c; entry points in qpython.c), ImportError
where it was not built.

Called directly, not through numba: numba and LLVM cost ~110 MB of resident memory, which a bot
on a 512 MB machine cannot spare. The entry points check their arrays' types and shapes, release
the GIL while they compute, and cost well under a microsecond a call. The rarely asked settings
(instruction set, AMX state, threads) go through ctypes.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np
import numpy.typing as npt

from core import _qkernel  # type: ignore[attr-defined]
from core.quant import F32, IDX, U8

_LIBRARY = ctypes.CDLL(_qkernel.__file__)
_LIBRARY.lstmbot_qkernel_amx_calls.restype = ctypes.c_long

# qmatmul_c(packed, scale, corr, cols, x, table, index, out[, backwards]): numba_kernel.qmatmul_numba's
# contract; `backwards` reads the weights from the last rows to the first, the same bytes (see
# lstmbot_qmatmul in core/qkernel.c).
qmatmul_c = _qkernel.qmatmul
# cell_c(z, c, h_out, c_out): numba_kernel.cell_update's contract (AVX2 or AVX-512, FMA).
cell_c = _qkernel.lstm_cell
# lstm_layer_c(packed, scale, corr, below, h, c, table, index, h_out, c_out, backwards): layer_inputs_c,
# then qmatmul_c, then cell_c, in one call (core/lstm_step.py's lstm_layer).
lstm_layer_c = _qkernel.lstm_layer
# lstm_step_c(tokens, layers, dense, logits): every layer's lstm_layer_c from the bottom, then the
# dense product into logits, in one call (core/generator.py's step at up to KERNEL_MAX_ROWS rows).
lstm_step_c = _qkernel.lstm_step
# lstm_run_c(tokens, logits, layers, dense, temps, uniforms, masked, greedy_below, cdf): for each
# row of uniforms, draw_plain_c's draw from logits into that row of tokens, then lstm_step_c on
# those tokens; h, c and h_out, c_out swap after every step (core/generator.py's plain runs). Under
# 8 rows it reads the first layer's weights for the next step beside the upper layers' and
# alternates the direction (core/qpython.c, "steps in rounds"): the same bytes, from L2.
lstm_run_c = _qkernel.lstm_run
# quantize_into_c(x, out, offset): numba_kernel.quantize_into's contract.
quantize_into_c = _qkernel.quantize_into

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
    picks = np.empty(len(logits), dtype=np.int64)
    _qkernel.draw_plain(logits, temps, uniforms, masked, greedy_below, np.empty(logits.shape[1]), picks)
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
    out = np.empty(len(query), dtype=np.int64)
    _qkernel.matching_statistics(text, suffixes, query, buckets, vocab, depth, out)
    return out
