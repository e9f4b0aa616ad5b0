"""KTO fine-tuning: the loss, scoring as the served model does, a tiny tuning run, the CLI's checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli import main
from core.bundle import load_bundle
from core.generator import Generator
from train.kto import (
    balanced_lambdas,
    check_beta,
    encode_pairs,
    kto_losses,
    load_kto_rows,
    sequence_log_probs,
)
from train.preferences import PreferencesError


def write_rows(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _served_log_p(gen: Generator, prompt_ids: list[int], completion: str) -> float:
    """log p(completion | prompt) as the served generator steps through it, in float64."""
    state, logits = gen._prime([prompt_ids])
    total = 0.0
    for token in gen.bundle.tokenizer.encode(completion):
        z = logits[0].astype(np.float64)
        total += float(z[token] - z.max() - np.log(np.exp(z - z.max()).sum()))
        logits = gen._logits(gen._step(np.array([token]), state))
    return total


def test_the_kto_loss_against_numpy() -> None:
    logp = np.array([-10.0, -12.0, -8.0, -30.0], np.float32)
    ref = np.array([-11.0, -12.5, -9.0, -20.0], np.float32)
    desirable = np.array([True, False, True, False])
    beta, z0, lambda_d, lambda_u = 0.5, 0.3, 1.5, 1.0

    def sigmoid(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = 1 / (1 + np.exp(-x))
        return out

    r = logp.astype(np.float64) - ref
    expected = np.where(
        desirable, lambda_d * (1 - sigmoid(beta * (r - z0))), lambda_u * (1 - sigmoid(beta * (z0 - r)))
    )
    got = np.asarray(
        kto_losses(logp, ref, desirable, np.float32(z0), beta=beta, lambda_d=lambda_d, lambda_u=lambda_u)
    )
    assert np.allclose(got, expected, atol=1e-6)
    # By hand, row 0: r = 1, β(r − z0) = 0.35, loss = 1.5 · (1 − σ(0.35)).
    assert got[0] == pytest.approx(1.5 * (1 - 1 / (1 + np.exp(-0.35))), abs=1e-6)
    # Counts balance the weights: λD·nD = λU·nU, the common class at 1.
    assert balanced_lambdas(125, 175) == (175 / 125, 1.0)
    assert balanced_lambdas(4, 2) == (1.0, 2.0)


@pytest.mark.parametrize("beta", [0.0, -0.1, float("nan"), float("inf")])
def test_beta_must_be_positive(beta: float) -> None:
    with pytest.raises(PreferencesError, match="beta"):
        check_beta(beta)


def test_completions_are_scored_as_the_served_model_generates(make_bundle: object, tiny_text: str) -> None:
    """Prime on the prompt's last `window` tokens, then step on through the completion."""
    bundle = load_bundle(make_bundle(lstm_units=(16, 16), window=8))  # type: ignore[operator]
    from dataclasses import replace

    from core.keras_model import build_model, set_named_weights

    model = build_model(replace(bundle.model, return_sequences=True))
    set_named_weights(model, dict(bundle.weights))
    gen = Generator(bundle, precision="float32")
    # The prompt is longer than the window and the completion runs well past it.
    pairs = [("the will to power is ", "a woman? what then"), ("truth ", "is")]
    encoded = encode_pairs(pairs, bundle.tokenizer, bundle.model.window)
    got = np.asarray(sequence_log_probs(model, encoded.ids, encoded.mask))

    def served(prompt: str, completion: str) -> float:
        return _served_log_p(gen, bundle.tokenizer.encode(prompt)[-bundle.model.window :], completion)

    assert got == pytest.approx([served(*pair) for pair in pairs], abs=2e-4)


def test_reading_rows(tmp_path: Path) -> None:
    kto = write_rows(
        tmp_path / "kto.jsonl",
        [
            {"prompt": "a ", "completion": "good", "label": True, "temperature": 1.0},
            {"prompt": "a ", "completion": "bad", "label": False, "temperature": 0.2},
            {"prompt": "a ", "chosen": "yes", "rejected": "no"},
        ],
    )
    read = load_kto_rows(kto)
    assert [(r.completion, r.desirable) for r in read.rows] == [
        ("good", True), ("bad", False), ("yes", True), ("no", False),
    ]  # fmt: skip
    assert read.read == 3 and read.desirable == 2
    # Too cold rows skipped, what is left is all of one kind: KTO cannot learn from that.
    hot_only = write_rows(
        tmp_path / "one-sided.jsonl", [json.loads(line) for line in kto.read_text().splitlines()[:2]]
    )
    with pytest.raises(
        PreferencesError, match="both liked and disliked completions, and has its one row liked"
    ):
        load_kto_rows(hot_only, min_temperature=0.5)


@pytest.mark.slow
def test_kto_raises_the_liked_ratio_and_lowers_the_disliked(tmp_path: Path, tiny_text: str) -> None:
    from tests.train.test_loop import TINY as tiny
    from train.loop import train
    from train.run import TrainRun

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(tiny_text, encoding="utf-8")
    train(TrainRun(corpus, tmp_path / "base", tiny, verbose=0))
    prompt, good, bad = "supposing that ", "truth is a woman", "the will to pow"
    prefs = write_rows(
        tmp_path / "prefs.jsonl",
        [
            {"prompt": prompt, "completion": good, "label": True},
            {"prompt": prompt, "completion": bad, "label": False},
        ],
    )
    fast = tiny.with_overrides(learning_rate=1e-2, steps_per_epoch=10)
    train(TrainRun(
        corpus, tmp_path / "tuned", fast, init_from=tmp_path / "base", preferences=prefs,
        preference_loss="kto", kto_beta=0.5, kto_corpus_weight=0.1, verbose=0,
    ))  # fmt: skip

    def log_p(model: str, completion: str) -> float:
        bundle = load_bundle(tmp_path / model)
        gen = Generator(bundle, precision="float32")
        return _served_log_p(gen, bundle.tokenizer.encode(prompt), completion)

    assert log_p("tuned", good) - log_p("base", good) > 0.5
    assert log_p("tuned", bad) - log_p("base", bad) < -0.5
    meta = load_bundle(tmp_path / "tuned").meta
    recorded = meta["preferences"]
    assert recorded["loss"] == "kto" and recorded["beta"] == 0.5 and recorded["corpus_weight"] == 0.1
    assert (recorded["desirable"], recorded["undesirable"]) == (1, 1)
    assert meta["metrics"]["heldout"]["nats_per_token"] > 0


@pytest.mark.parametrize("beta", ["0", "-1", "nan"])
def test_the_cli_refuses_a_bad_beta(tmp_path: Path, capsys: pytest.CaptureFixture[str], beta: str) -> None:
    prefs = write_rows(tmp_path / "prefs.jsonl", [{"prompt": "a", "chosen": "b", "rejected": "c"}])
    args = ["train", "--init-from", str(tmp_path / "base"), "--out", str(tmp_path / "out")]
    code = main([*args, "--preferences", str(prefs), "--preference-loss", "kto", "--kto-beta", beta])
    assert code != 0
    assert "--kto-beta must be a positive number" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_cli_keeps_sft_options_to_sft(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prefs = write_rows(tmp_path / "prefs.jsonl", [{"prompt": "a", "chosen": "b", "rejected": "c"}])
    args = ["train", "--init-from", str(tmp_path / "base"), "--out", str(tmp_path / "out")]
    assert main([*args, "--preferences", str(prefs), "--dislike-weight", "1"]) != 0  # kto is the default
    assert "--dislike-weight is for --preference-loss sft" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_kto_options_do_not_touch_runs_without_preferences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "--corpus", "nietzsche", "--out", str(tmp_path / "none"), "--resume"])
    assert code != 0
    err = capsys.readouterr().err
    assert "nothing to resume from" in err and "KTO" not in err and "--preference-loss" not in err
