"""Training recipes: the book's, kept exactly as the reference, and the faster default."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

Recipe = Literal["book", "fast"]
Level = Literal["char", "word"]
StrategyName = Literal["default", "mirrored", "multiworker"]
Precision = Literal["float32", "mixed_bfloat16"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides how a model is trained; stored in the bundle's config."""

    recipe: Recipe = "fast"
    level: Level = "char"
    window: int = 60
    step: int = 3  # book recipe: distance between window starts
    input: Literal["onehot", "embedding"] = "embedding"
    embedding_dim: int = 64
    hidden: int = 512
    layers: int = 1
    dropout: float = 0.0
    # Small batches and a high rate learn fastest per second on a CPU (bench/train.py); the
    # plateau callback lowers the rate once the held-out loss stalls.
    batch: int = 32
    epochs: int = 30
    optimizer: Literal["rmsprop", "adam"] = "adam"
    learning_rate: float = 5e-3
    clipnorm: float | None = 1.0
    lowercase: bool = True
    max_vocab: int = 10_000  # keep the most frequent tokens (char level: binds only for Chinese)
    heldout_fraction: float = 0.1
    val_stride: int = 3  # held-out targets scored after each epoch: every Nth one
    lr_patience: int = 2
    lr_factor: float = 0.5
    stop_patience: int = 6
    steps_per_epoch: int | None = None
    sample_length: int = 400
    strategy: StrategyName = "default"
    # mixed_bfloat16 computes in bfloat16 and keeps float32 weights: about 1.7x the characters a
    # second on a CPU with AVX512-BF16 or AMX (bench: /work/probe numbers in the issue 27 note).
    precision: Precision = "float32"
    # Weight averaging (Polyak): held-out scoring, the best bundle and the checkpoint use an
    # exponential moving average of the weights with this momentum (None: the raw weights).
    ema: float | None = None
    seed: int = 1337

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def with_overrides(self, **changes: Any) -> TrainConfig:
        """A copy with the given fields changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


# The book, ch. 8.1: one-hot 60-char windows every 3 chars, LSTM(128), RMSprop(0.01), batch 128,
# loss on the last position only.
BOOK = TrainConfig(
    recipe="book",
    window=60,
    step=3,
    input="onehot",
    embedding_dim=0,
    hidden=128,
    layers=1,
    dropout=0.0,
    batch=128,
    optimizer="rmsprop",
    learning_rate=0.01,
    clipnorm=None,
)

# Ours: every position of a window predicts its next token (60x more signal per forward pass),
# an embedding instead of a one-hot, Adam with gradient clipping, windows reshuffled each epoch.
FAST = TrainConfig(recipe="fast")

# The word-level model, as in the book's second approach: Embedding(V, 256) + LSTM(256).
FAST_WORD = TrainConfig(
    recipe="fast",
    level="word",
    window=40,
    embedding_dim=256,
    hidden=256,
    dropout=0.2,
    batch=64,
    learning_rate=2e-3,
    max_vocab=10_000,
    lowercase=False,
)


def preset(recipe: Recipe, level: Level) -> TrainConfig:
    """The default configuration for a recipe at a level."""
    if recipe == "book":
        if level == "word":
            return replace(
                BOOK, level="word", input="embedding", embedding_dim=256, hidden=256, lowercase=False
            )
        return BOOK
    return FAST_WORD if level == "word" else FAST
