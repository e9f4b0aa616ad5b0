"""The training run: corpus -> tokenizer -> tf.data -> Keras fit with callbacks -> model bundle."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.bundle import load_bundle, save_bundle
from core.config import ModelConfig
from core.keras_model import build_model, get_named_weights, set_named_weights
from core.tokenizers import Tokenizer
from train.corpus import Corpus, load_corpus
from train.data import Split, seed_snippets, split_corpus, training_dataset
from train.evaluate import HeldOutMetrics
from train.kto import DEFAULT_BETA, DEFAULT_CORPUS_WEIGHT
from train.preferences import (
    DEFAULT_DISLIKE_WEIGHT,
    DEFAULT_SHARE,
    Kinds,
    PreferredTexts,
    load_preferred_texts,
    mix_with_kinds,
)
from train.recipes import TrainConfig

if TYPE_CHECKING:
    from train.kto import KtoRows, KtoSettings

PREFERENCE_LOSSES = ("sft", "kto")

CHECKPOINTS = "checkpoints"
LOG_CSV = "training_log.csv"
LOG_JSON = "training_log.jsonl"


@dataclass(frozen=True)
class TrainResult:
    """What a run produced."""

    out: Path
    epochs: int
    best_loss: float
    seconds: float
    interrupted: bool


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


def _strategy(name: str) -> Any:
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        # Reads the cluster from TF_CONFIG; without it this host is a cluster of one.
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def _optimizer(config: TrainConfig) -> Any:
    import keras

    extra = {"clipnorm": config.clipnorm} if config.clipnorm else {}
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=config.learning_rate, **extra)
    return keras.optimizers.Adam(learning_rate=config.learning_rate, **extra)


def set_threads(threads: int | None) -> None:
    """Limit TensorFlow (and numpy's BLAS, via the environment) to `threads` cores."""
    if not threads:
        return
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, threads))


def _bundle_meta(
    corpus: Corpus,
    config: TrainConfig,
    split: Split,
    metrics: HeldOutMetrics | None,
    epochs: int,
    seconds: float,
) -> dict[str, Any]:
    return {
        "language": corpus.language,
        "corpus": {
            "name": corpus.name,
            "sha256": corpus.sha256,
            "characters": len(corpus.text),
            "train_tokens": len(split.train),
            "heldout_tokens": len(split.heldout),
        },
        "training": {**config.to_dict(), "epochs_done": epochs, "seconds": round(seconds, 1)},
        "metrics": {"heldout": metrics.as_dict() if metrics else None},
        "seeds": seed_snippets(corpus.text, split.tokenizer),
    }


def train(
    corpus_spec: str | Path,
    out: Path,
    config: TrainConfig,
    *,
    resume: bool = False,
    epochs: int | None = None,
    init_from: Path | None = None,
    preferences: Path | None = None,
    preference_share: float = DEFAULT_SHARE,
    dislike_weight: float = DEFAULT_DISLIKE_WEIGHT,
    preference_min_temperature: float | None = None,
    preference_loss: str = "kto",
    kto_beta: float = DEFAULT_BETA,
    kto_corpus_weight: float = DEFAULT_CORPUS_WEIGHT,
    verbose: int | None = None,
) -> TrainResult:
    """Train a model on a corpus and keep its best held-out bundle in `out`.

    With `resume`, the saved run's config is used; `epochs` (if given) sets the new total.
    With `init_from` (a bundle), training starts from its weights and vocabulary: fine-tuning.
    With `preferences` (a KTO or DPO export) and `preference_loss="kto"` (the default), the
    model is tuned by the KTO objective (train/kto.py, β = `kto_beta`) against the frozen
    `init_from` bundle, plus `kto_corpus_weight` times the cross-entropy on corpus windows.
    With `preference_loss="sft"`, the preferred texts are mixed into the corpus' training part
    instead (see train/preferences.py); with `dislike_weight` > 0 their disliked texts are
    mixed in too and pushed down (train/losses.py). Either way the held-out part is unchanged,
    and with `preference_min_temperature` only rows sampled at least that hot are used.
    """
    import keras

    from train.callbacks import BestBundle, Checkpoint, HeldOutScore, JsonLog, SampleText, StopOnSignal

    if preference_loss not in PREFERENCE_LOSSES:
        raise ValueError(f"preference_loss must be one of {PREFERENCE_LOSSES}, got {preference_loss!r}")
    kto = preferences is not None and preference_loss == "kto"
    if kto and (resume or init_from is None):
        from train.preferences import PreferencesError

        raise PreferencesError("KTO fine-tunes a bundle (--init-from) and cannot --resume")
    if kto:
        from train.kto import check_beta

        check_beta(kto_beta)
        if not (kto_corpus_weight >= 0 and math.isfinite(kto_corpus_weight)):
            raise ValueError(f"kto_corpus_weight must be 0 or more, got {kto_corpus_weight}")
        # KTO scores whole completions: every LSTM must return sequences (the fast recipe).
        config = config.with_overrides(recipe="fast")
    started = time.monotonic()
    out = Path(out)
    ckpt_dir = out / CHECKPOINTS
    state: dict[str, Any] = {}
    tokenizer: Tokenizer | None = None
    if resume:
        state_path = ckpt_dir / "state.json"
        if not state_path.is_file():
            raise FileNotFoundError(f"{state_path}: nothing to resume from (train without --resume first)")
        state = json.loads(state_path.read_text())
        config = TrainConfig(**state["config"])
        tokenizer = Tokenizer.load(ckpt_dir / "vocab.json")
    config = config.with_overrides(epochs=epochs)
    start_weights = None
    base_id: str | None = None  # "name@version" of the bundle fine-tuned from
    if init_from is not None and not resume:
        base = load_bundle(init_from)
        base_id = f"{base.name}@{base.version}"
        tokenizer, start_weights = base.tokenizer, dict(base.weights)
        config = config.with_overrides(
            level=base.level,
            window=base.model.window,
            input=base.model.input,
            embedding_dim=base.model.embedding_dim,
            hidden=base.model.lstm_units[0],
            layers=len(base.model.lstm_units),
            lowercase=getattr(base.tokenizer, "lowercase", config.lowercase),
        )
    keras.utils.set_random_seed(config.seed)

    kto_rows: KtoRows | None = None
    kto_settings: KtoSettings | None = None
    if kto:
        from train.kto import load_kto_rows

        assert preferences is not None
        kto_rows = load_kto_rows(preferences, min_temperature=preference_min_temperature)
    preferred = (
        load_preferred_texts(preferences, min_temperature=preference_min_temperature)
        if preferences is not None and not kto
        else None
    )
    corpus = load_corpus(corpus_spec)
    split = split_corpus(corpus, config, tokenizer)
    tokenizer = split.tokenizer
    kinds: Kinds | None = None
    if preferred is not None:
        disliked = preferred.disliked if dislike_weight > 0 else ()
        mixed, kinds = mix_with_kinds(
            split.train, preferred.texts, disliked, tokenizer, share=preference_share, seed=config.seed
        )
        split = replace(split, train=mixed)
        if not disliked:
            kinds = None  # all LIKE: the plain loss is the same thing
    model_config = model_config_for(config, tokenizer.vocab_size)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(ckpt_dir / "vocab.json")

    with _strategy(config.strategy).scope():
        if resume:
            import train.losses  # noqa: F401 - registers PreferenceLoss, which a checkpoint may use

            model = keras.models.load_model(ckpt_dir / "last.keras")
        else:
            model = build_model(model_config)
            if start_weights is not None:
                set_named_weights(model, start_weights)
            if kto_rows is not None:
                model, kto_data, kto_settings = _kto_model(
                    model, kto_rows, tokenizer, config, kto_beta, kto_corpus_weight
                )
                model.compile(optimizer=_optimizer(config))
            else:
                model.compile(
                    optimizer=_optimizer(config), loss=_loss(tokenizer.vocab_size, kinds, dislike_weight)
                )

    dataset = training_dataset(split.train, config, tokenizer.vocab_size, kinds).repeat()
    if kto_rows is not None:
        import tensorflow as tf

        from train.kto import kto_dataset

        assert kto_settings is not None
        dataset = tf.data.Dataset.zip((dataset, kto_dataset(kto_data, kto_settings.batch, config.seed)))
    windows = len(
        range(0, len(split.train) - config.window, config.step if config.recipe == "book" else config.window)
    )
    steps = config.steps_per_epoch or max(1, windows // config.batch)
    initial_epoch = int(state.get("epoch", 0))
    seconds_before = float(state.get("seconds", 0.0))

    scorer = HeldOutScore(model_config, tokenizer, split.heldout, split.heldout_chars, config.val_stride)
    epochs_done = initial_epoch

    def export(loss: float) -> None:
        meta = _bundle_meta(
            corpus, config, split, scorer.last, epochs_done, seconds_before + time.monotonic() - started
        )
        if preferred is not None:
            meta["preferences"] = _preferences_meta(
                preferred, preference_share, base_id, dislike_weight if kinds is not None else 0.0
            )
            meta["preferences"]["min_temperature"] = preference_min_temperature
        if kto_rows is not None and kto_settings is not None:
            meta["preferences"] = _kto_meta(kto_rows, kto_settings, base_id, preference_min_temperature)
        with _signals_deferred():  # a bundle is written whole: its files and their checksums agree
            save_bundle(
                out,
                model=model_config,
                tokenizer=tokenizer,
                weights=get_named_weights(model, model_config),
                meta=meta,
            )

    best = BestBundle(export, best=float(state.get("best", float("inf"))))

    class EpochCounter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            nonlocal epochs_done
            epochs_done = epoch + 1

    def checkpoint_state() -> dict[str, Any]:
        return {
            "config": config.to_dict(),
            "best": best.best,
            "seconds": seconds_before + time.monotonic() - started,
        }

    checkpoint = Checkpoint(ckpt_dir, checkpoint_state)
    callbacks = [
        EpochCounter(),
        scorer,  # must precede everything that reads val_loss
        best,
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=config.lr_factor, patience=config.lr_patience, min_lr=1e-5, verbose=1
        ),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.stop_patience, verbose=1),
        SampleText(model_config, tokenizer, split.heldout, config.sample_length, config.seed),
        keras.callbacks.CSVLogger(str(out / LOG_CSV), append=resume),
        JsonLog(out / LOG_JSON),
        checkpoint,
    ]
    stopper = StopOnSignal()
    callbacks.append(stopper)
    for callback in callbacks:
        callback.set_model(model)  # so a Ctrl-C before the first epoch can still save
    interrupted = False
    # Ctrl-C and SIGTERM (a scheduler or `kill`) stop training cleanly and keep a usable bundle.
    previous = {sig: signal.signal(sig, stopper.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        model.fit(
            dataset,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps,
            callbacks=callbacks,
            verbose=verbose if verbose is not None else (1 if sys.stdout.isatty() else 2),
        )
        interrupted = stopper.signum is not None
    except KeyboardInterrupt:  # a second Ctrl-C, or one before training began
        interrupted = True
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if interrupted:
        # Keep what we have. A run with no finished epoch still leaves a usable bundle.
        print("\ninterrupted: saving a checkpoint and a usable bundle", file=sys.stderr)
        checkpoint.save(epochs_done)
        if best.best == float("inf"):
            scorer.score()
            export(scorer.last.nats_per_token if scorer.last else float("inf"))
    return TrainResult(out, epochs_done, best.best, seconds_before + time.monotonic() - started, interrupted)


def _loss(vocab_size: int, kinds: Kinds | None, dislike_weight: float) -> Any:
    """Plain cross-entropy, or the preference loss when disliked texts are in the data."""
    if kinds is None:
        return "sparse_categorical_crossentropy"
    from train.losses import PreferenceLoss

    return PreferenceLoss(vocab_size, dislike_weight)


def _kto_model(
    model: Any, rows: KtoRows, tokenizer: Tokenizer, config: TrainConfig, beta: float, corpus_weight: float
) -> tuple[Any, Any, KtoSettings]:
    """The model wrapped for KTO, its rows scored by the (still untouched) base weights."""
    from train.kto import KtoSettings, balanced_lambdas, kto_model, prepare

    data = prepare(model, rows, tokenizer, config.window)
    desirable = int(data.desirable.sum())
    lambda_d, lambda_u = balanced_lambdas(desirable, len(data.desirable) - desirable)
    settings = KtoSettings(beta=beta, corpus_weight=corpus_weight, lambda_d=lambda_d, lambda_u=lambda_u)
    return kto_model(model, settings), data, settings


def _kto_meta(
    rows: KtoRows, settings: KtoSettings, base: str | None, min_temperature: float | None
) -> dict[str, Any]:
    """What a KTO fine-tuning learned from and how, recorded in the bundle."""
    return {
        "loss": "kto",
        **settings.as_dict(),
        "source": Path(rows.source).name,
        "sha256": rows.sha256,
        "rows": rows.read,
        "desirable": rows.desirable,
        "undesirable": len(rows.rows) - rows.desirable,
        "base": base,
        "min_temperature": min_temperature,
    }


def _preferences_meta(
    preferred: PreferredTexts, share: float, base: str | None, dislike_weight: float
) -> dict[str, Any]:
    """What a preference fine-tuning learned from, recorded in the bundle."""
    return {
        "loss": "sft",
        "source": Path(preferred.source).name,
        "sha256": preferred.sha256,
        "rows": preferred.rows,
        "preferred_texts": len(preferred.texts),
        "disliked_texts": len(preferred.disliked) if dislike_weight > 0 else 0,
        "dislike_weight": dislike_weight,
        "share": share,
        "base": base,
    }


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while a bundle is written, then act on them.

    An interrupt between writing weights.h5 and config.json would leave a bundle whose
    checksums do not match its files, which loading rightly refuses.
    """
    caught: list[int] = []
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum)) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for signum in caught[:1]:  # now the restored handler acts on it (during fit: a clean stop)
        signal.raise_signal(signum)


def configure_environment() -> None:
    """Quiet TensorFlow's start-up logging before it is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
