"""The int8 weight layout and the 7-bit activation grid the generator runs with (numpy only).

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

Kept apart from the kernels (core/c_kernel.py, core/numba_kernel.py) so that loading a model
imports neither numba nor the C library.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I8 = npt.NDArray[np.int8]
U8 = npt.NDArray[np.uint8]
IDX = npt.NDArray[np.int64]

ROW_BLOCK = 16  # output rows per block of the kernel's layout
INPUT_QUAD = 4  # inputs per broadcast; kpad is a multiple of 2 quads
INPUT_PAD = 8
QUANT_SLICE = 256  # kernel rows quantised at a time (bounds the float64 temporaries)
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
        w = np.asarray(kernel).T  # a view: rows are quantised a slice at a time, below
        outputs, inputs = w.shape
        rows, kpad = cls.padded(outputs, inputs)
        q_pad = np.zeros((rows, kpad), dtype=np.int8)
        row_scale = np.empty(outputs, dtype=np.float64)
        # In float64 (exact rounding), but QUANT_SLICE rows at a time: the whole matrix at once
        # made four float64 temporaries, ~50 MB of peak memory for a 1024 x 2048 kernel.
        for start in range(0, outputs, QUANT_SLICE):
            part = w[start : start + QUANT_SLICE].astype(np.float64)
            peak = np.abs(part).max(axis=1)
            scale_part = np.where(peak > 0, peak / 127.0, 1.0)
            row_scale[start : start + QUANT_SLICE] = scale_part
            part /= scale_part[:, None]
            q_pad[start : start + len(part), :inputs] = np.clip(np.rint(part, out=part), -127, 127)
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

    @staticmethod
    def padded(outputs: int, inputs: int) -> tuple[int, int]:
        """The layout's (rows, kpad) for an (outputs, inputs) matrix: both padded with zeros."""
        return -(-outputs // ROW_BLOCK) * ROW_BLOCK, -(-inputs // INPUT_PAD) * INPUT_PAD

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


def on_grid(x: F32) -> F32:
    """The float32 values the kernel actually multiplies: x rounded to the 7-bit grid."""
    u = np.rint((np.clip(x, -1.0, 1.0) + 1.0) * np.float32(HALF_LEVELS))
    out: F32 = (u / np.float32(HALF_LEVELS) - 1.0).astype(np.float32)
    return out
