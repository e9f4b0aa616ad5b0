"""Held-out evaluation: cross-entropy of the next token after exactly `window` tokens of context.

Scoring runs through `core.Generator` (numpy), so the number reported is the one the served
model has, and evaluation never needs TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from core.generator import KERNEL_MAX_ROWS, Generator
from train.data import Ids, heldout_windows


@dataclass(frozen=True)
class HeldOutMetrics:
    """Held-out cross-entropy in several units."""

    nats_per_token: float
    bits_per_token: float
    bits_per_char: float
    perplexity: float
    targets: int
    stride: int

    def as_dict(self) -> dict[str, float | int]:
        """JSON-ready form."""
        return asdict(self)


def heldout_metrics(
    generator: Generator,
    ids: Ids,
    *,
    heldout_chars: int,
    stride: int = 1,
    batch: int | None = None,
) -> HeldOutMetrics:
    """Score every `stride`-th held-out token given the `window` tokens before it.

    int8 generators score in batches the compiled kernel takes (KERNEL_MAX_ROWS), so the
    figure is the served path's own, and 3-4x quicker than larger batches through BLAS
    (Shakespeare's model: 25,000 against 7,500 contexts' steps a second)."""
    if batch is None:
        batch = KERNEL_MAX_ROWS if generator.precision == "int8" else 512
    contexts, targets = heldout_windows(ids, generator.window, stride)
    total = 0.0
    for begin in range(0, len(targets), batch):
        logits = generator.batch_logits(contexts[begin : begin + batch]).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(logits).sum(axis=1))
        picked = logits[np.arange(len(logits)), targets[begin : begin + batch]]
        total += float((log_norm - picked).sum())
    nats = total / len(targets)
    tokens_per_char = len(ids) / max(heldout_chars, 1)
    return HeldOutMetrics(
        nats_per_token=nats,
        bits_per_token=nats / math.log(2),
        bits_per_char=nats / math.log(2) * tokens_per_char,
        perplexity=math.exp(nats),
        targets=len(targets),
        stride=stride,
    )
