"""The model's architecture as a frozen dataclass: what a bundle needs to rebuild the network."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

InputKind = Literal["onehot", "embedding"]


@dataclass(frozen=True)
class ModelConfig:
    """An LSTM language model: input layer, stacked LSTMs, softmax over the vocabulary.

    The book's character model is ``ModelConfig(vocab_size=V, window=60, input="onehot",
    lstm_units=(128,))``; its word model uses ``input="embedding", embedding_dim=256,
    lstm_units=(256,)``.
    """

    vocab_size: int
    window: int = 60
    input: InputKind = "onehot"
    embedding_dim: int = 0
    lstm_units: tuple[int, ...] = (128,)
    dropout: float = 0.0
    # True: the network predicts after every position (the fast recipe trains on all of them);
    # False: only after the last one, as in the book. The weights are the same either way.
    return_sequences: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {self.vocab_size}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if self.input not in ("onehot", "embedding"):
            raise ValueError(f"input must be 'onehot' or 'embedding', got {self.input!r}")
        if self.input == "embedding" and self.embedding_dim < 1:
            raise ValueError("an embedding input needs embedding_dim >= 1")
        if not self.lstm_units or any(u < 1 for u in self.lstm_units):
            raise ValueError(f"lstm_units must be positive sizes, got {self.lstm_units}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def input_dim(self) -> int:
        """Width of the vectors fed to the first LSTM."""
        return self.embedding_dim if self.input == "embedding" else self.vocab_size

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every weight array the model has, by bundle name, with its shape."""
        shapes: dict[str, tuple[int, ...]] = {}
        if self.input == "embedding":
            shapes["embedding/embeddings"] = (self.vocab_size, self.embedding_dim)
        width = self.input_dim
        for i, units in enumerate(self.lstm_units):
            shapes[f"lstm_{i}/kernel"] = (width, 4 * units)
            shapes[f"lstm_{i}/recurrent_kernel"] = (units, 4 * units)
            shapes[f"lstm_{i}/bias"] = (4 * units,)
            width = units
        shapes["dense/kernel"] = (width, self.vocab_size)
        shapes["dense/bias"] = (self.vocab_size,)
        return shapes

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists)."""
        data = asdict(self)
        data["lstm_units"] = list(self.lstm_units)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of `to_dict`; unknown keys are an error so typos do not pass silently."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model settings: {', '.join(sorted(unknown))}")
        values = dict(data)
        if "lstm_units" in values:
            values["lstm_units"] = tuple(int(u) for u in values["lstm_units"])
        return cls(**values)


def book_char_config(vocab_size: int) -> ModelConfig:
    """Chollet's character model: 60-char one-hot windows, LSTM(128), softmax Dense."""
    return ModelConfig(vocab_size=vocab_size, window=60, input="onehot", lstm_units=(128,))
