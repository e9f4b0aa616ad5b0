"""Keras callbacks: held-out scoring, best-bundle export, per-epoch samples and the JSON log."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from core.bundle import Bundle
from core.config import ModelConfig
from core.generator import Generator, Request
from core.keras_model import get_named_weights
from core.tokenizers import Tokenizer
from train.evaluate import HeldOutMetrics, heldout_metrics

SAMPLE_TEMPERATURES = (0.2, 0.5, 1.0, 1.2)


def generator_from_model(model: keras.Model, config: ModelConfig, tokenizer: Tokenizer) -> Generator:
    """A numpy generator over the Keras model's current weights (no files written)."""
    bundle = Bundle(
        path=Path("."),
        name="training",
        version="0",
        model=config,
        tokenizer=tokenizer,
        weights=get_named_weights(model, config),
    )
    return Generator(bundle)


class HeldOutScore(keras.callbacks.Callback):
    """Scores the held-out text after each epoch and puts it in the logs as `val_loss`.

    Runs first, so that the learning-rate, early-stopping and checkpoint callbacks after it see
    the same number `lstmbot eval` reports (every `stride`-th target instead of every one).
    """

    def __init__(
        self,
        config: ModelConfig,
        tokenizer: Tokenizer,
        heldout: np.ndarray,
        heldout_chars: int,
        stride: int,
    ) -> None:
        super().__init__()
        self.config, self.tokenizer = config, tokenizer
        self.heldout, self.heldout_chars, self.stride = heldout, heldout_chars, stride
        self.last: HeldOutMetrics | None = None

    def score(self) -> HeldOutMetrics:
        """Score the model's current weights."""
        generator = generator_from_model(self.model, self.config, self.tokenizer)
        self.last = heldout_metrics(
            generator, self.heldout, heldout_chars=self.heldout_chars, stride=self.stride
        )
        return self.last

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        metrics = self.score()
        if logs is not None:
            logs["val_loss"] = metrics.nats_per_token
            logs["val_bits_per_char"] = metrics.bits_per_char


class BestBundle(keras.callbacks.Callback):
    """Exports the bundle whenever the held-out loss improves on the best so far."""

    def __init__(self, export: Callable[[float], None], best: float = float("inf")) -> None:
        super().__init__()
        self.export, self.best = export, best

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        loss = float((logs or {}).get("val_loss", float("inf")))
        if loss < self.best:
            self.best = loss
            self.export(loss)
            print(f"\nepoch {epoch + 1}: held-out loss improved to {loss:.4f} nats; bundle saved")


class SampleText(keras.callbacks.Callback):
    """The book's loop: after each epoch, continue a random seed at 0.2, 0.5, 1.0 and 1.2."""

    def __init__(
        self,
        config: ModelConfig,
        tokenizer: Tokenizer,
        seeds_from: np.ndarray,
        length: int,
        seed: int,
    ) -> None:
        super().__init__()
        self.config, self.tokenizer = config, tokenizer
        self.seeds_from, self.length = seeds_from, length
        self.rng = np.random.default_rng(seed)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        generator = generator_from_model(self.model, self.config, self.tokenizer)
        start = int(self.rng.integers(0, len(self.seeds_from) - self.config.window))
        seed = self.tokenizer.decode(self.seeds_from[start : start + self.config.window].tolist())
        print(f'\n--- seed: "{seed}"')
        requests = [
            Request(seed, length=self.length, temperature=t, rng=int(self.rng.integers(1 << 31)))
            for t in SAMPLE_TEMPERATURES
        ]
        for temperature, sample in zip(SAMPLE_TEMPERATURES, generator.generate(requests), strict=True):
            print(f"--- temperature {temperature}\n{seed}{sample.text}\n")


class JsonLog(keras.callbacks.Callback):
    """Appends one JSON line per epoch (all logged metrics, learning rate, wall time)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.started = time.monotonic()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch_started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        record = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        record["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        record["epoch_seconds"] = round(time.monotonic() - self.epoch_started, 2)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


class Checkpoint(keras.callbacks.Callback):
    """Saves the whole model (weights and optimizer) and the epoch reached, for --resume."""

    def __init__(self, folder: Path, state: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self.folder, self.state = folder, state
        folder.mkdir(parents=True, exist_ok=True)

    def save(self, epoch: int) -> None:
        """Write last.keras then state.json (the state names an epoch the model has finished)."""
        tmp = self.folder / "last.tmp.keras"
        self.model.save(tmp)
        tmp.replace(self.folder / "last.keras")
        state = {"epoch": epoch, **self.state()}
        (self.folder / "state.json").write_text(json.dumps(state, indent=2))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.save(epoch + 1)


class StopOnSignal(keras.callbacks.Callback):
    """Ctrl-C or SIGTERM (install `handle` for both) ends training at the end of the current
    batch, as if training were done; a second signal stops at once (KeyboardInterrupt).

    Why not raise KeyboardInterrupt from the handler: raised at an arbitrary point inside
    TensorFlow's data pipeline it can be caught there and resurface as an unrelated error
    ("Cannot iterate over a scalar tensor"), and the run then dies with no bundle.
    """

    def __init__(self) -> None:
        super().__init__()
        self.signum: int | None = None

    def handle(self, signum: int, _frame: object) -> None:
        """The signal handler: ask Keras to stop, or stop now if asked before."""
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        if self._model is not None:
            self._model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Stop again here: a callback may have reset the flag since the signal came."""
        if self.signum is not None:
            self.model.stop_training = True
