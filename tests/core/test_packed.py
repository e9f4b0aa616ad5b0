"""Int8 weights kept between starts (core/packed.py): the same bytes and text as packed afresh,
read back without parsing weights.h5, and a torn or foreign entry rebuilt, never trusted."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from core.bundle import BundleError, WeightsOnDisk, load_bundle, sha256_file
from core.generator import Generator, Request
from core.packed import Int8Weights, int8_weights, pack

ROOT = Path(__file__).resolve().parents[2]


def _same(a: Int8Weights, b: Int8Weights) -> None:
    assert len(a.matrices) == len(b.matrices) and len(a.tables) == len(b.tables)
    for m, n in [*zip(a.matrices, b.matrices, strict=True), (a.dense, b.dense)]:
        assert (m.outputs, m.inputs, m.kpad) == (n.outputs, n.inputs, n.kpad)
        for part in ("packed", "scale", "corr"):
            assert np.array_equal(getattr(m, part), getattr(n, part)), part
    for s, t in zip(a.tables, b.tables, strict=True):
        assert np.array_equal(s, t)
    assert np.array_equal(a.dense_bias, b.dense_bias)


@pytest.mark.parametrize("name", ["nietzsche-char", "hongloumeng-word"])
def test_cached_weights_are_the_packed_ones_and_write_the_same_text(name: str, tmp_path: Path) -> None:
    """The char model keeps its small token table in the entry; the word model's 31 MB table
    has its own mapped entry. Either way a second start reads the cache, not weights.h5."""
    folder = ROOT / "models" / name
    fresh = load_bundle(folder)
    seed = "宝玉笑道" if name.endswith("word") else "the meaning of life is "
    request = Request(seed, length=80, temperature=1.0, rng=11)
    expected = Generator(fresh).generate_one(request).text

    first = int8_weights(load_bundle(folder, weights="lazy"), tmp_path)  # packs and stores
    assert len(list(tmp_path.glob("int8-*.npz"))) == 1
    lazy = load_bundle(folder, weights="lazy")
    generator = Generator(lazy, cache_dir=tmp_path)
    assert isinstance(lazy.weights, WeightsOnDisk) and not lazy.weights.checked  # never parsed
    _same(first, pack(fresh, None))
    _same(int8_weights(lazy, tmp_path), first)
    assert generator.generate_one(request).text == expected


def test_a_torn_or_foreign_entry_is_rebuilt(
    tiny_bundle: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bundle = load_bundle(tiny_bundle)
    reference = pack(bundle, None)
    int8_weights(bundle, tmp_path)
    (entry,) = tmp_path.glob("int8-*.npz")
    entry.write_bytes(entry.read_bytes()[:1000])  # torn
    with caplog.at_level(logging.WARNING):
        _same(int8_weights(load_bundle(tiny_bundle, weights="lazy"), tmp_path), reference)
    assert "rebuilding the cache file" in caplog.text
    _same(int8_weights(load_bundle(tiny_bundle, weights="lazy"), tmp_path), reference)  # rewritten whole

    # Another model's arrays under this key (a bug, or a hand-copied file): not this model's shapes.
    other = tmp_path / "other"
    int8_weights(load_bundle(ROOT / "models" / "nietzsche-char"), other)
    shutil.copyfile(next(other.glob("int8-*.npz")), entry)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        lazy = load_bundle(tiny_bundle, weights="lazy")
        _same(int8_weights(lazy, tmp_path), reference)
    assert "is not this model's" in caplog.text


def test_a_folder_that_cannot_be_written_only_costs_time(tiny_bundle: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    bundle = load_bundle(tiny_bundle)
    _same(int8_weights(bundle, blocked / "cache"), pack(bundle, None))


def test_lazy_weights_are_checked_on_the_first_read(tiny_bundle: Path, tmp_path: Path) -> None:
    """A file whose sha256 config.json records but whose contents are wrong (a NaN): a lazy
    bundle loads, and the generator that needs its weights refuses it as loading would."""
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    with h5py.File(broken / "weights.h5", "r+") as h5:
        data = h5["dense/bias"][()]
        data[0] = np.nan
        h5["dense/bias"][...] = data
    config = (broken / "config.json").read_text()
    config = config.replace(sha256_file(tiny_bundle / "weights.h5"), sha256_file(broken / "weights.h5"))
    (broken / "config.json").write_text(config)
    with pytest.raises(BundleError, match="non-finite"):
        load_bundle(broken)
    lazy = load_bundle(broken, weights="lazy")
    with pytest.raises(BundleError, match=r"dense/bias has 1 non-finite value"):
        Generator(lazy, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("int8-*"))  # nothing stored from a refused file


def test_a_cold_generate_reads_the_cache_without_h5py(tmp_path: Path) -> None:
    """`lstmbot generate` in a fresh process: the first run packs and stores, the next ones
    never import h5py, and all write what a run without a cache writes."""
    script = (
        "import sys; from cli import main; code = main(sys.argv[1:]); "
        "print('h5py imported:', 'h5py' in sys.modules, file=sys.stderr); sys.exit(code)"
    )
    argv = [
        sys.executable,
        "-c",
        script,
        "generate",
        "the meaning of",
        "-n",
        "60",
        "-t",
        "0.5,1.2",
        "--seed",
        "5",
    ]

    def run(cache: str) -> tuple[str, str]:
        env = {**os.environ, "CACHE_DIR": cache}
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        return done.stdout, done.stderr

    uncached, _ = run("")
    first, first_err = run(str(tmp_path))
    again, again_err = run(str(tmp_path))
    assert first == again == uncached and "--- temperature 1.2" in again
    assert "h5py imported: True" in first_err and "h5py imported: False" in again_err
