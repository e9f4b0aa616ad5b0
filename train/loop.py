"""The training run, stage by stage: start -> data -> model -> fit with callbacks -> bundle.

`train(TrainRun(...))` runs the stages in order; each lives in its own module (train/start.py,
train/inputs.py, train/build.py, train/fit.py, train/export.py). Keras and TensorFlow are
imported only once a run begins, so `configure_environment` can quiet them first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from train.run import TrainRun


@dataclass(frozen=True)
class TrainResult:
    """What a run produced."""

    out: Path
    epochs: int
    best_loss: float
    seconds: float
    interrupted: bool


def train(run: TrainRun) -> TrainResult:
    """Train a model on a corpus and keep its best held-out bundle in `run.out`."""
    import keras

    from train.build import build
    from train.export import save_run_bundle
    from train.fit import Progress, fit, keep_what_we_have, training_data, watchers
    from train.inputs import load_inputs
    from train.start import checkpoint_dir, resolve_start

    start = resolve_start(run)
    keras.utils.set_random_seed(start.config.seed)
    inputs = load_inputs(run, start)
    checkpoint_dir(run).mkdir(parents=True, exist_ok=True)
    inputs.split.tokenizer.save(checkpoint_dir(run) / "vocab.json")
    try:
        built = build(run, start, inputs)
        data = training_data(start, inputs, built)
        progress = Progress(start.epoch, start.seconds)

        def export(loss: float) -> None:
            save_run_bundle(run, start, inputs, built, watch.scorer.last, progress.epochs, progress.seconds())

        watch = watchers(run, start, inputs, built, progress, export)
        interrupted = fit(run, start, built, data, watch)
        if interrupted:
            keep_what_we_have(watch, progress, export)
    finally:
        keras.mixed_precision.set_global_policy("float32")  # build() may have set mixed_bfloat16
    return TrainResult(Path(run.out), progress.epochs, watch.best.best, progress.seconds(), interrupted)


def set_threads(threads: int | None) -> None:
    """Limit TensorFlow (and numpy's BLAS, via the environment) to `threads` cores."""
    if not threads:
        return
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, threads))


def configure_environment() -> None:
    """Quiet TensorFlow's start-up logging before it is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
