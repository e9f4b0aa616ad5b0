"""Bundles: round trip, and every kind of damage named with its file and problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.bundle import BundleError, load_bundle, save_bundle
from core.config import ModelConfig
from core.tokenizers import CharTokenizer


@pytest.fixture
def bundle_copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(tiny_bundle, target)
    return target


def test_round_trip_keeps_everything(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    assert bundle.model.vocab_size == bundle.tokenizer.vocab_size
    assert bundle.level == "char" and bundle.language == "en"
    assert set(bundle.weights) == set(bundle.model.weight_shapes())
    config = json.loads((tiny_bundle / "config.json").read_text())
    assert config["format_version"] == 1 and config["tokenizer"]["kind"] == "char"


def test_missing_weights_file_is_named(bundle_copy: Path) -> None:
    (bundle_copy / "weights.h5").unlink()
    with pytest.raises(BundleError, match=r"weights\.h5: missing"):
        load_bundle(bundle_copy)


def test_truncated_weights_are_caught(bundle_copy: Path) -> None:
    path = bundle_copy / "weights.h5"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(BundleError, match=r"weights\.h5.*sha256 mismatch"):
        load_bundle(bundle_copy)


def test_truncated_weights_without_checksum_still_fail_clearly(bundle_copy: Path) -> None:
    config = json.loads((bundle_copy / "config.json").read_text())
    del config["files"]
    (bundle_copy / "config.json").write_text(json.dumps(config))
    path = bundle_copy / "weights.h5"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(BundleError, match=r"weights\.h5: unreadable weights file"):
        load_bundle(bundle_copy)


def test_vocabulary_size_mismatch_is_named(bundle_copy: Path) -> None:
    config = json.loads((bundle_copy / "config.json").read_text())
    config["model"]["vocab_size"] += 1
    (bundle_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match=r"vocab\.json: \d+ tokens, but config\.json says"):
        load_bundle(bundle_copy)


def test_architecture_mismatch_names_the_weight(bundle_copy: Path) -> None:
    config = json.loads((bundle_copy / "config.json").read_text())
    config["model"]["lstm_units"] = [64]
    (bundle_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match=r"lstm_0/.* has shape .* the config says"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not valid JSON"), ('{"format_version": 99}', "format_version 99")],
)
def test_bad_config_files(bundle_copy: Path, content: str, message: str) -> None:
    (bundle_copy / "config.json").write_text(content)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_copy)


def test_no_such_folder() -> None:
    with pytest.raises(BundleError, match="no such model folder"):
        load_bundle("/nonexistent/model")


def test_save_refuses_inconsistent_parts(tmp_path: Path) -> None:
    tok = CharTokenizer.fit("abc")
    config = ModelConfig(vocab_size=tok.vocab_size, lstm_units=(4,))
    weights = {name: np.zeros(shape, np.float32) for name, shape in config.weight_shapes().items()}
    with pytest.raises(BundleError, match="expects"):
        save_bundle(
            tmp_path / "b", model=ModelConfig(vocab_size=9, lstm_units=(4,)), tokenizer=tok, weights=weights
        )
    weights["dense/bias"] = np.zeros(3, np.float32)
    with pytest.raises(BundleError, match="dense/bias has shape"):
        save_bundle(tmp_path / "b", model=config, tokenizer=tok, weights=weights)
    assert not (tmp_path / "b" / "config.json").exists()


def test_resaving_keeps_other_files(bundle_copy: Path) -> None:
    (bundle_copy / "training_log.jsonl").write_text("{}\n")
    bundle = load_bundle(bundle_copy)
    save_bundle(bundle_copy, model=bundle.model, tokenizer=bundle.tokenizer, weights=bundle.weights)
    assert (bundle_copy / "training_log.jsonl").read_text() == "{}\n"
    assert load_bundle(bundle_copy).model == bundle.model
