"""A run's fit: its tf.data input, its callbacks (scoring, best bundle, checkpoint, logs), and
Keras' fit, stopped cleanly by Ctrl-C or SIGTERM with a usable bundle kept."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras

from train.build import Built
from train.callbacks import BestBundle, Checkpoint, HeldOutScore, JsonLog, SampleText, StopOnSignal
from train.data import training_dataset
from train.inputs import Inputs
from train.run import TrainRun
from train.start import Start, checkpoint_dir

LOG_CSV = "training_log.csv"
LOG_JSON = "training_log.jsonl"


@dataclass
class Progress:
    """How far a run has got: epochs done, and seconds spent including a resumed run's before."""

    epochs: int
    seconds_before: float
    started: float = field(default_factory=time.monotonic)

    def seconds(self) -> float:
        """Seconds spent on this run so far, across resumes."""
        return self.seconds_before + time.monotonic() - self.started


class _EpochCounter(keras.callbacks.Callback):
    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.progress.epochs = epoch + 1


@dataclass(frozen=True)
class Watchers:
    """The fit's callbacks, and those the end of an interrupted run needs again."""

    callbacks: list[keras.callbacks.Callback]
    scorer: HeldOutScore
    best: BestBundle
    checkpoint: Checkpoint
    stopper: StopOnSignal


def training_data(start: Start, inputs: Inputs, built: Built) -> tuple[Any, int]:
    """The endless tf.data input of the fit (KTO: zipped with the rated rows) and steps per epoch."""
    config, split = start.config, inputs.split
    dataset = training_dataset(split.train, config, split.tokenizer.vocab_size, inputs.kinds).repeat()
    if built.kto_data is not None and built.kto_settings is not None:
        import tensorflow as tf

        from train.kto import kto_dataset

        kto = kto_dataset(built.kto_data, built.kto_settings.batch, config.seed)
        dataset = tf.data.Dataset.zip((dataset, kto))
    stride = config.step if config.recipe == "book" else config.window
    windows = len(range(0, len(split.train) - config.window, stride))
    return dataset, config.steps_per_epoch or max(1, windows // config.batch)


def watchers(
    run: TrainRun,
    start: Start,
    inputs: Inputs,
    built: Built,
    progress: Progress,
    export: Callable[[float], None],
) -> Watchers:
    """Score on the held-out part, keep the best bundle, checkpoint, log, and stop on a signal."""
    config, split = start.config, inputs.split
    scorer = HeldOutScore(
        built.config, split.tokenizer, split.heldout, split.heldout_chars, config.val_stride
    )
    best = BestBundle(export, best=float(start.state.get("best", float("inf"))))

    def checkpoint_state() -> dict[str, Any]:
        return {"config": config.to_dict(), "best": best.best, "seconds": progress.seconds()}

    checkpoint = Checkpoint(checkpoint_dir(run), checkpoint_state)
    stopper = StopOnSignal()
    # First, so that every callback after it sees the averaged weights at an epoch's end; they
    # are swapped back when the next epoch begins.
    averaging = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.ema is not None else []
    callbacks = [
        *averaging,
        _EpochCounter(progress),
        scorer,  # must precede everything that reads val_loss
        best,
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=config.lr_factor, patience=config.lr_patience, min_lr=1e-5, verbose=1
        ),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.stop_patience, verbose=1),
        SampleText(built.config, split.tokenizer, split.heldout, config.sample_length, config.seed),
        keras.callbacks.CSVLogger(str(run.out / LOG_CSV), append=run.resume),
        JsonLog(run.out / LOG_JSON),
        checkpoint,
        stopper,
    ]
    for callback in callbacks:
        callback.set_model(built.model)  # so a Ctrl-C before the first epoch can still save
    return Watchers(callbacks, scorer, best, checkpoint, stopper)


def fit(run: TrainRun, start: Start, built: Built, data: tuple[Any, int], watch: Watchers) -> bool:
    """Train to the config's epochs; True when a signal (or Ctrl-C) stopped it early."""
    dataset, steps = data
    # Ctrl-C and SIGTERM (a scheduler or `kill`) stop training cleanly and keep a usable bundle.
    previous = {sig: signal.signal(sig, watch.stopper.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        built.model.fit(
            dataset,
            epochs=start.config.epochs,
            initial_epoch=start.epoch,
            steps_per_epoch=steps,
            callbacks=watch.callbacks,
            verbose=run.verbose if run.verbose is not None else (1 if sys.stdout.isatty() else 2),
        )
        return watch.stopper.signum is not None
    except KeyboardInterrupt:  # a second Ctrl-C, or one before training began
        return True
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def keep_what_we_have(watch: Watchers, progress: Progress, export: Callable[[float], None]) -> None:
    """After an interrupt: a checkpoint, and a usable bundle even with no finished epoch."""
    print("\ninterrupted: saving a checkpoint and a usable bundle", file=sys.stderr)
    watch.checkpoint.save(progress.epochs)
    if watch.best.best == float("inf"):
        watch.scorer.score()
        export(watch.scorer.last.nats_per_token if watch.scorer.last else float("inf"))
