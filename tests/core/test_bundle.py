"""Bundles: round trip, and every kind of damage named with its file and problem."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from core.bundle import BundleError, load_bundle, save_bundle, sha256_file
from core.config import ModelConfig
from core.tokenizers import CharTokenizer

ROOT = Path(__file__).resolve().parents[2]


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


def _edit_config(bundle: Path, change: Callable[[dict[str, Any]], None]) -> None:
    config = json.loads((bundle / "config.json").read_text())
    change(config)
    (bundle / "config.json").write_text(json.dumps(config))


def test_a_bundle_without_checksums_is_refused(bundle_copy: Path) -> None:
    """Before: with no "files" section nothing was checked, so a swapped file loaded silently."""
    _edit_config(bundle_copy, lambda config: config.pop("files"))
    with pytest.raises(BundleError, match=r"config\.json: no sha256 recorded for vocab\.json, weights\.h5"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("file_name", ["vocab.json", "weights.h5"])
def test_a_missing_checksum_is_named(bundle_copy: Path, file_name: str) -> None:
    _edit_config(bundle_copy, lambda config: config["files"].pop(file_name))
    with pytest.raises(BundleError, match=rf"config\.json: no sha256 recorded for {re.escape(file_name)} \("):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("value", ["", "not-a-digest", 42])
def test_a_malformed_checksum_is_named(bundle_copy: Path, value: object) -> None:
    _edit_config(bundle_copy, lambda config: config["files"].__setitem__("vocab.json", value))
    with pytest.raises(BundleError, match=r"config\.json: .*vocab\.json"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("name", ["../../etc/hostname", "/etc/hostname", "sub/../../outside.txt", "link.txt"])
def test_a_file_outside_the_bundles_folder_is_never_read(bundle_copy: Path, name: str) -> None:
    """Issue 24, item 11: a config naming "../../etc/hostname" had it read and hashed."""
    outside = bundle_copy.parent / "outside.txt"
    outside.write_text("not the bundle's")
    (bundle_copy / "link.txt").symlink_to(outside)
    digest = hashlib.sha256(b"not the bundle's").hexdigest()
    _edit_config(bundle_copy, lambda config: config["files"].__setitem__(name, digest))
    with pytest.raises(BundleError, match=r"is not a file of the bundle's own folder"):
        load_bundle(bundle_copy)


def test_a_replaced_vocabulary_is_named(bundle_copy: Path) -> None:
    vocab = json.loads((bundle_copy / "vocab.json").read_text())
    vocab["tokens"][1], vocab["tokens"][2] = vocab["tokens"][2], vocab["tokens"][1]
    (bundle_copy / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(BundleError, match=r"vocab\.json: contents differ .*sha256 mismatch"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_with_the_weights_name(bundle_copy: Path, bad: float) -> None:
    """Before: a diverged training run's NaN weights loaded, and every sample was garbage."""
    with h5py.File(bundle_copy / "weights.h5", "r+") as h5:
        data = h5["dense/bias"][()]
        data[3] = bad
        h5["dense/bias"][...] = data
    new_sha = sha256_file(bundle_copy / "weights.h5")
    _edit_config(bundle_copy, lambda config: config["files"].__setitem__("weights.h5", new_sha))
    with pytest.raises(BundleError, match=r"weights\.h5: dense/bias has 1 non-finite value \(NaN or inf\)"):
        load_bundle(bundle_copy)


def test_save_refuses_non_finite_weights(bundle_copy: Path, tmp_path: Path) -> None:
    bundle = load_bundle(bundle_copy)
    weights = dict(bundle.weights)
    weights["dense/kernel"] = np.full_like(weights["dense/kernel"], np.nan)
    with pytest.raises(BundleError, match=r"dense/kernel has \d+ non-finite values"):
        save_bundle(tmp_path / "nan", model=bundle.model, tokenizer=bundle.tokenizer, weights=weights)
    assert not (tmp_path / "nan" / "config.json").exists()


@pytest.mark.parametrize("name", ["nietzsche-char", "hongloumeng-word"])
def test_the_shipped_bundles_load_with_their_checksums(name: str) -> None:
    bundle = load_bundle(ROOT / "models" / name)
    config = json.loads((ROOT / "models" / name / "config.json").read_text())
    assert set(config["files"]) == {"vocab.json", "weights.h5"}
    assert all(np.isfinite(w).all() for w in bundle.weights.values())


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


def test_weights_left_on_disk_read_back_the_same_and_refuse_a_replaced_file(bundle_copy: Path) -> None:
    """A server lets the float32 weights go once packed (load_bundle(weights="disk")); whoever
    asks later (lstmbot eval, the Keras path) reads the file again, and only the file it checked."""
    from core.bundle import WeightsOnDisk

    kept = load_bundle(bundle_copy)
    lean = load_bundle(bundle_copy, weights="disk")
    assert isinstance(lean.weights, WeightsOnDisk) and lean.weights_sha256 == kept.weights_sha256
    assert set(lean.weights) == set(kept.weights)
    for name, value in kept.weights.items():
        np.testing.assert_array_equal(lean.weights[name], value)
    with pytest.raises(KeyError):
        lean.weights["no/such"]
    # The same bytes written anew (another inode, another mtime): still the same weights.
    weights_file = bundle_copy / "weights.h5"
    copy = bundle_copy / "copy.h5"
    shutil.copyfile(weights_file, copy)
    copy.replace(weights_file)
    np.testing.assert_array_equal(lean.weights["dense/bias"], kept.weights["dense/bias"])
    # Other weights written over it (a retrained bundle): refused, never mixed in.
    with h5py.File(weights_file, "r+") as h5:
        h5["dense/bias"][...] = h5["dense/bias"][()] + 1
    with pytest.raises(BundleError, match="replaced since the bundle was loaded"):
        lean.weights["dense/bias"]
