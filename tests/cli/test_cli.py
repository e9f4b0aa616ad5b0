"""The console script: generate, eval and train through `lstmbot`, with friendly errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli import main
from core.bundle import load_bundle

ROOT = Path(__file__).resolve().parents[2]


def lstmbot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env=env,
        timeout=120,
    )


def test_generate_prints_one_sample_per_temperature(tiny_bundle: Path) -> None:
    out = lstmbot(
        "generate",
        "the will to truth",
        "--model",
        str(tiny_bundle),
        "-t",
        "0.2,0.5,1.0,1.2",
        "--length",
        "50",
        "--seed",
        "3",
    )
    assert out.returncode == 0, out.stderr
    parts = out.stdout.split("--- temperature ")[1:]
    assert [p.split("\n", 1)[0] for p in parts] == ["0.2", "0.5", "1", "1.2"]
    for part in parts:
        body = part.split("\n", 1)[1].rstrip("\n")
        assert body.startswith("the will to truth") and len(body) == len("the will to truth") + 50
    again = lstmbot(
        "generate",
        "the will to truth",
        "--model",
        str(tiny_bundle),
        "-t",
        "0.2,0.5,1.0,1.2",
        "--length",
        "50",
        "--seed",
        "3",
    )
    assert again.stdout == out.stdout
    # A temperature's text does not depend on the others listed (second newcomer pass: the
    # seed was offset by the temperature's place in the list).
    alone = lstmbot(
        "generate",
        "the will to truth",
        "--model",
        str(tiny_bundle),
        "-t",
        "0.5",
        "--length",
        "50",
        "--seed",
        "3",
    )
    assert alone.stdout.split("--- temperature ")[1] == parts[1]


def test_generate_without_a_model_says_where_and_how(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "none"))
    monkeypatch.setattr("cli.bundles.PROJECT_MODELS", tmp_path / "also-none")
    assert main(["generate", "hello"]) == 2
    err = capsys.readouterr().err
    assert "no model named 'nietzsche-char'" in err and "lstmbot train" in err and "--model" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-t", "hot"], "not a temperature"),
        (["-t", "-1"], "not a temperature"),
        (["--length", "0"], "length must be between"),
        (["--top-p", "7"], "top_p"),
    ],
)
def test_generate_bad_options(tiny_bundle: Path, args: list[str], message: str) -> None:
    out = lstmbot("generate", "seed", "--model", str(tiny_bundle), *args)
    assert out.returncode == 2 and message in out.stderr
    assert "Traceback" not in out.stderr


def test_generate_broken_model_names_the_file(tiny_bundle: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    out = lstmbot("generate", "seed", "--model", str(broken))
    assert out.returncode == 2 and "config.json" in out.stderr and "Traceback" not in out.stderr


def test_eval_prints_heldout_metrics_and_writes_them(
    tiny_bundle: Path, tmp_path: Path, tiny_text: str
) -> None:
    import json
    import shutil

    model = tmp_path / "m"
    shutil.copytree(tiny_bundle, model)
    corpus = tmp_path / "c.txt"
    corpus.write_text(tiny_text, encoding="utf-8")
    out = lstmbot("eval", "--model", str(model), "--corpus", str(corpus), "--write")
    assert out.returncode == 0, out.stderr
    # A char model's bits per character once (second newcomer pass: printed twice), and what
    # was scored said as scored, not as the size of the held-out part.
    assert "nats/char" in out.stdout and out.stdout.count("bits/char") == 1
    assert (
        "bits per character" not in out.stdout
        and "chars scored (of the held-out last 10%, every one;" in out.stdout
    )
    metrics = json.loads((model / "config.json").read_text())["metrics"]["heldout"]
    assert metrics["nats_per_token"] > 0 and metrics["stride"] == 1


def test_train_bad_corpus_is_a_friendly_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    out = lstmbot("train", "--corpus", str(empty), "--out", str(tmp_path / "m"))
    assert out.returncode == 2 and "the corpus is empty" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_train_keep_case_keeps_capitals_in_the_vocabulary(tmp_path: Path) -> None:
    corpus = tmp_path / "play.txt"
    corpus.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n\n" * 80)
    tiny = ["--epochs", "1", "--steps-per-epoch", "1", "--hidden", "8", "--embedding", "4"]
    args = ["train", "--corpus", str(corpus), *tiny, "--window", "20", "--batch", "8", "--val-stride", "50"]
    assert main([*args, "--out", str(tmp_path / "kept"), "--keep-case"]) == 0
    kept = load_bundle(tmp_path / "kept").tokenizer
    assert {"F", "C", "B"} <= set(kept.tokens) and kept.normalize("All:") == "All:"
    assert main([*args, "--out", str(tmp_path / "lowered")]) == 0
    assert "F" not in load_bundle(tmp_path / "lowered").tokenizer.tokens


def test_train_with_preferences_needs_a_bundle_to_start_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefs = tmp_path / "prefs.jsonl"
    prefs.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n', encoding="utf-8")
    code = main(
        ["train", "--corpus", "nietzsche", "--out", str(tmp_path / "out"), "--preferences", str(prefs)]
    )
    assert code != 0
    assert "--init-from" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_train_refuses_a_negative_dislike_weight(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prefs = tmp_path / "prefs.jsonl"
    prefs.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n', encoding="utf-8")
    args = ["train", "--init-from", str(tmp_path / "base"), "--out", str(tmp_path / "out")]
    code = main([*args, "--preferences", str(prefs), "--dislike-weight", "-1"])
    assert code != 0
    assert "--dislike-weight must be 0 or more" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
