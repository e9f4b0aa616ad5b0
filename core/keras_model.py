"""The Keras (TensorFlow backend) definition of the model, used for training and as the reference.

Serving never imports this module: `core.generator` runs the same network in numpy.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from core.config import ModelConfig

if TYPE_CHECKING:
    import keras

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is not ours


SOFTMAX = "softmax"  # the output layer after "dense": it has no weights


def build_model(config: ModelConfig) -> keras.Model:
    """Build the network described by `config` (logits are computed, then softmax)."""
    import keras

    if config.input == "onehot":
        inputs = keras.Input(shape=(config.window, config.vocab_size), name="onehot")
        x = inputs
    else:
        inputs = keras.Input(shape=(config.window,), dtype="int32", name="ids")
        x = keras.layers.Embedding(config.vocab_size, config.embedding_dim, name="embedding")(inputs)
    last = len(config.lstm_units) - 1
    for i, units in enumerate(config.lstm_units):
        if config.dropout and (config.input == "embedding" or i > 0):
            x = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
        sequences = config.return_sequences or i < last
        x = keras.layers.LSTM(units, return_sequences=sequences, name=f"lstm_{i}")(x)
    if config.dropout:
        x = keras.layers.Dropout(config.dropout, name="dropout_out")(x)
    logits = keras.layers.Dense(config.vocab_size, name="dense")(x)
    # float32 even under a mixed-precision policy (the product may run in bfloat16: with 6,000
    # characters it is half of a step): a bfloat16 softmax would round the loss.
    outputs = keras.layers.Activation("softmax", dtype="float32", name=SOFTMAX)(logits)
    return keras.Model(inputs, outputs, name="lstm_lm")


def get_named_weights(model: keras.Model, config: ModelConfig) -> dict[str, np.ndarray]:
    """The model's weights under the bundle's names (see `ModelConfig.weight_shapes`)."""
    named: dict[str, np.ndarray] = {}
    for name in config.weight_shapes():
        layer_name, weight_name = name.split("/")
        layer = model.get_layer(layer_name)
        matches = [w for w in layer.weights if w.path.split("/")[-1] == weight_name]
        if len(matches) != 1:
            raise ValueError(f"layer {layer_name!r} has no single weight named {weight_name!r}")
        named[name] = np.asarray(matches[0].numpy(), dtype=np.float32)
    return named


def set_named_weights(model: keras.Model, weights: dict[str, np.ndarray]) -> None:
    """Load bundle-named weights into a model built from the same config."""
    for name, value in weights.items():
        layer_name, weight_name = name.split("/")
        layer = model.get_layer(layer_name)
        (target,) = [w for w in layer.weights if w.path.split("/")[-1] == weight_name]
        target.assign(value)
