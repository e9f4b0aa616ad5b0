"""End-to-end training runs on a tiny corpus: bundles, Keras parity, resume, Ctrl-C, strategies."""

from __future__ import annotations

import json
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.bundle import load_bundle
from core.generator import Generator, Request
from train.loop import train
from train.recipes import FAST, preset
from train.run import TrainRun

pytestmark = pytest.mark.slow

TINY = FAST.with_overrides(
    window=20,
    hidden=16,
    embedding_dim=8,
    batch=16,
    epochs=1,
    steps_per_epoch=3,
    val_stride=7,
    sample_length=20,
)


@pytest.fixture
def corpus_file(tmp_path: Path, tiny_text: str) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(tiny_text, encoding="utf-8")
    return path


def test_one_epoch_gives_a_loadable_bundle_matching_keras(corpus_file: Path, tmp_path: Path) -> None:
    import keras

    from core.keras_model import build_model, set_named_weights

    result = train(TrainRun(corpus_file, tmp_path / "m", TINY, verbose=0))
    assert result.epochs == 1 and not result.interrupted
    bundle = load_bundle(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["training"]["recipe"] == "fast" and config["metrics"]["heldout"]["nats_per_token"] > 0
    assert config["corpus"]["train_tokens"] > config["corpus"]["heldout_tokens"]
    assert (tmp_path / "m" / "training_log.csv").is_file()
    # The generator on the trained (float32) weights and the Keras model agree.
    model = build_model(bundle.model)
    set_named_weights(model, dict(bundle.weights))
    seed = "the terrible seriousness and clumsy"
    ids = bundle.tokenizer.encode(seed)[-bundle.model.window :]
    keras_p = np.asarray(model.predict(np.array([ids]), verbose=0))[0, -1]
    ours = Generator(bundle, precision="float32").next_token_probs(seed)
    assert np.abs(keras_p - ours).max() < 1e-5
    assert len(Generator(bundle).generate_one(Request(seed, length=30, rng=1)).text) == 30
    keras.backend.clear_session()


def test_resume_continues_from_the_checkpoint(corpus_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    train(TrainRun(corpus_file, out, TINY, verbose=0))
    result = train(TrainRun(corpus_file, out, TINY, resume=True, epochs=2, verbose=0))
    assert result.epochs == 2
    lines = (out / "training_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 2


def test_resume_without_a_checkpoint_is_a_clear_error(corpus_file: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(TrainRun(corpus_file, tmp_path / "m", TINY, resume=True, verbose=0))


def test_ctrl_c_still_leaves_a_usable_bundle(
    corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras

    def interrupted_fit(self: Any, *args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "fit", interrupted_fit)
    result = train(TrainRun(corpus_file, tmp_path / "m", TINY, verbose=0))
    assert result.interrupted
    bundle = load_bundle(tmp_path / "m")
    assert len(Generator(bundle).generate_one(Request("truth", length=5, rng=0)).token_ids) == 5
    assert (tmp_path / "m" / "checkpoints" / "last.keras").is_file()


@pytest.mark.parametrize("strategy", ["default", "mirrored"])
def test_book_recipe_and_strategies_train(corpus_file: Path, tmp_path: Path, strategy: str) -> None:
    config = preset("book", "char").with_overrides(
        window=20,
        hidden=16,
        batch=16,
        epochs=1,
        steps_per_epoch=3,
        val_stride=7,
        sample_length=20,
        strategy=strategy,
    )
    train(TrainRun(corpus_file, tmp_path / "m", config, verbose=0))
    bundle = load_bundle(tmp_path / "m")
    assert bundle.model.input == "onehot" and not bundle.model.return_sequences
    assert bundle.meta["training"]["strategy"] == strategy


def test_word_level_run_on_chinese(tmp_path: Path, hongloumeng_path: Path) -> None:
    text = hongloumeng_path.read_text(encoding="utf-8")[:20_000]
    corpus = tmp_path / "hlm.txt"
    corpus.write_text(text, encoding="utf-8")
    config = preset("fast", "word").with_overrides(
        window=12,
        hidden=16,
        embedding_dim=8,
        batch=16,
        epochs=1,
        steps_per_epoch=2,
        val_stride=5,
        sample_length=10,
        max_vocab=500,
    )
    train(TrainRun(corpus, tmp_path / "w", config, verbose=0))
    bundle = load_bundle(tmp_path / "w")
    assert bundle.level == "word" and bundle.language == "zh" and bundle.model.vocab_size == 500
    assert "。" in bundle.tokenizer.tokens
    sample = Generator(bundle).generate_one(Request("宝玉笑道", length=8, rng=0))
    assert len(sample.token_ids) == 8


def test_fine_tuning_starts_from_a_bundle(corpus_file: Path, tmp_path: Path) -> None:
    train(TrainRun(corpus_file, tmp_path / "base", TINY, verbose=0))
    base = load_bundle(tmp_path / "base")
    # A different architecture asked for is ignored: fine-tuning keeps the base model's shape.
    tuned_config = TINY.with_overrides(hidden=64, learning_rate=1e-4, steps_per_epoch=1)
    train(TrainRun(corpus_file, tmp_path / "tuned", tuned_config, init_from=tmp_path / "base", verbose=0))
    tuned = load_bundle(tmp_path / "tuned")
    assert tuned.tokenizer.tokens == base.tokenizer.tokens and tuned.model.lstm_units == base.model.lstm_units
    # One small step moves the weights only a little away from the base.
    delta = np.abs(tuned.weights["dense/kernel"] - base.weights["dense/kernel"]).max()
    assert 0 < delta < 0.05


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_signal_stops_training_and_keeps_a_bundle(
    corpus_file: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    import os
    import subprocess
    import sys
    import time

    out = tmp_path / "m"
    root = Path(__file__).resolve().parents[2]
    args = [
        "--corpus",
        str(corpus_file),
        "--out",
        str(out),
        "--epochs",
        "1000",
        "--steps-per-epoch",
        "2",
        "--hidden",
        "8",
        "--embedding",
        "4",
        "--window",
        "20",
        "--batch",
        "8",
        "--val-stride",
        "50",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "train", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (out / "training_log.jsonl").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "training ended before its first epoch"
        time.sleep(0.2)
    proc.send_signal(signum)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output[-2000:]
    assert "interrupted after" in output and "Traceback" not in output
    assert len(Generator(load_bundle(out)).generate_one(Request("truth", length=5, rng=0)).token_ids) == 5
    assert (out / "checkpoints" / "last.keras").is_file()


def test_bfloat16_with_weight_averaging_keeps_the_scored_weights_and_resumes(
    corpus_file: Path, tmp_path: Path
) -> None:
    import keras

    from train.evaluate import heldout_metrics
    from train.loop import train as run_training

    out = tmp_path / "m"
    # Momentum 0.99 over 20 quick steps: the average stays near the initial weights, the raw
    # ones move far (3.77 against 3.03 nats on a slice of the book).
    config = TINY.with_overrides(precision="mixed_bfloat16", ema=0.99, steps_per_epoch=10, learning_rate=2e-2)
    result = run_training(TrainRun(corpus_file, out, config, epochs=2, verbose=0))
    assert result.epochs == 2
    assert keras.mixed_precision.global_policy().name == "float32"  # nothing else trains in bf16
    saved = json.loads((out / "config.json").read_text())
    assert saved["training"]["precision"] == "mixed_bfloat16" and saved["training"]["ema"] == 0.99
    # The bundle holds the weights that were scored (the average), not the raw last ones.
    from train.corpus import load_corpus
    from train.data import split_corpus

    def rescored(path: Path) -> float:
        bundle = load_bundle(path)
        split = split_corpus(load_corpus(corpus_file), config, bundle.tokenizer)
        generator = Generator(bundle, precision="float32")
        return heldout_metrics(
            generator, split.heldout, heldout_chars=split.heldout_chars, stride=7
        ).nats_per_token

    assert rescored(out) == pytest.approx(result.best_loss, abs=2e-3)
    raw = run_training(
        TrainRun(corpus_file, tmp_path / "raw", replace(config, ema=None), epochs=2, verbose=0)
    )
    assert result.best_loss > raw.best_loss + 0.1
    again = run_training(TrainRun(corpus_file, out, config, resume=True, epochs=3, verbose=0))
    assert again.epochs == 3
