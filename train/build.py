"""A run's model: built (or loaded from its checkpoint), started from a base's weights, compiled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.config import ModelConfig
from core.keras_model import build_model, set_named_weights
from core.tokenizers import Tokenizer
from train.inputs import Inputs
from train.preferences import Kinds
from train.recipes import TrainConfig
from train.run import TrainRun
from train.start import Start, checkpoint_dir

if TYPE_CHECKING:
    from train.kto import KtoData, KtoRows, KtoSettings


@dataclass(frozen=True)
class Built:
    """The compiled model and what else its training needs (KTO: the scored rows)."""

    model: Any  # keras.Model (Any: keras is imported only where a model is built)
    config: ModelConfig
    kto_data: KtoData | None = None
    kto_settings: KtoSettings | None = None


def model_config_for(config: TrainConfig, vocab_size: int) -> ModelConfig:
    """The architecture a training config describes."""
    return ModelConfig(
        vocab_size=vocab_size,
        window=config.window,
        input=config.input,
        embedding_dim=config.embedding_dim if config.input == "embedding" else 0,
        lstm_units=(config.hidden,) * config.layers,
        dropout=config.dropout,
        return_sequences=config.recipe == "fast",
    )


def optimizer_for(config: TrainConfig) -> Any:
    """The Keras optimizer a training config names."""
    import keras

    extra: dict[str, Any] = {"clipnorm": config.clipnorm} if config.clipnorm else {}
    if config.ema is not None:
        extra |= {"use_ema": True, "ema_momentum": config.ema}
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=config.learning_rate, **extra)
    return keras.optimizers.Adam(learning_rate=config.learning_rate, **extra)


def build(run: TrainRun, start: Start, inputs: Inputs) -> Built:
    """The run's model, compiled under its distribution strategy."""
    import keras

    config, tokenizer = start.config, inputs.split.tokenizer
    # Before building or loading: the layers take the global policy (a checkpoint keeps its own).
    keras.mixed_precision.set_global_policy(config.precision)
    model_config = model_config_for(config, tokenizer.vocab_size)
    with _strategy(config.strategy).scope():
        if run.resume:
            import train.losses  # noqa: F401 - registers PreferenceLoss, which a checkpoint may use

            return Built(keras.models.load_model(checkpoint_dir(run) / "last.keras"), model_config)
        model = build_model(model_config)
        if start.weights is not None:
            set_named_weights(model, start.weights)
        if inputs.kto_rows is not None:
            model, kto_data, settings = _kto_model(model, inputs.kto_rows, tokenizer, config, run)
            model.compile(optimizer=optimizer_for(config))
            return Built(model, model_config, kto_data, settings)
        model.compile(
            optimizer=optimizer_for(config),
            loss=_loss(tokenizer.vocab_size, inputs.kinds, run.dislike_weight),
        )
        return Built(model, model_config)


def _strategy(name: str) -> Any:
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        # Reads the cluster from TF_CONFIG; without it this host is a cluster of one.
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def _loss(vocab_size: int, kinds: Kinds | None, dislike_weight: float) -> Any:
    """Plain cross-entropy, or the preference loss when disliked texts are in the data."""
    if kinds is None:
        return "sparse_categorical_crossentropy"
    from train.losses import PreferenceLoss

    return PreferenceLoss(vocab_size, dislike_weight)


def _kto_model(
    model: Any, rows: KtoRows, tokenizer: Tokenizer, config: TrainConfig, run: TrainRun
) -> tuple[Any, KtoData, KtoSettings]:
    """The model wrapped for KTO, its rows scored by the (still untouched) base weights."""
    from train.kto import KtoSettings, balanced_lambdas, kto_model, prepare

    data = prepare(model, rows, tokenizer, config.window)
    desirable = int(data.desirable.sum())
    lambda_d, lambda_u = balanced_lambdas(desirable, len(data.desirable) - desirable)
    settings = KtoSettings(
        beta=run.kto_beta, corpus_weight=run.kto_corpus_weight, lambda_d=lambda_d, lambda_u=lambda_u
    )
    return kto_model(model, settings), data, settings
