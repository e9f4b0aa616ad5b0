"""The fine-tuning loss that also learns from disliked text (see train/preferences.py).

Labels carry a kind as well as a token: label = token + vocab_size * kind, with kind LIKE
(ordinary cross-entropy), DISLIKE (unlikelihood: `weight * log p`, floored at `floor`) or
IGNORE (no loss). With no DISLIKE or IGNORE labels it is exactly sparse categorical
cross-entropy on the model's softmax output.
"""

from __future__ import annotations

import math
from typing import Any

import keras

from train.preferences import DISLIKE, DISLIKE_FLOOR, IGNORE, LIKE


@keras.saving.register_keras_serializable(package="lstmbot")
class PreferenceLoss(keras.losses.Loss):
    """Cross-entropy on liked (and corpus) tokens, bounded unlikelihood on disliked ones."""

    def __init__(
        self, vocab_size: int, dislike_weight: float, floor: float = DISLIKE_FLOOR, **kwargs: Any
    ) -> None:
        super().__init__(name=kwargs.pop("name", "preference_loss"), **kwargs)
        self.vocab_size = int(vocab_size)
        self.dislike_weight = float(dislike_weight)
        self.floor = float(floor)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Per-position loss; y_pred are probabilities (the model ends in a softmax)."""
        ops = keras.ops
        labels = ops.cast(y_true, "int32")
        kind = labels // self.vocab_size
        token = labels % self.vocab_size
        picked = ops.take_along_axis(y_pred, ops.expand_dims(token, -1), axis=-1)[..., 0]
        log_p = ops.log(ops.clip(picked, keras.config.epsilon(), 1.0))
        # Why log p and not -log(1 - p): its gradient on the logits, -(1 - p), is largest for
        # the characters the model thought unlikely, which are what sampling got wrong; the
        # floor stops the push once a character is rare, so the loss stays bounded.
        unlikely = self.dislike_weight * ops.maximum(log_p, math.log(self.floor))
        like = ops.cast(ops.equal(kind, LIKE), log_p.dtype)
        dislike = ops.cast(ops.equal(kind, DISLIKE), log_p.dtype)
        assert IGNORE not in (LIKE, DISLIKE)  # IGNORE: neither mask is set, so no loss
        return -log_p * like + unlikely * dislike

    def get_config(self) -> dict[str, Any]:
        """What keras.saving needs to rebuild the loss (resume from a checkpoint)."""
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "dislike_weight": self.dislike_weight,
            "floor": self.floor,
        }
