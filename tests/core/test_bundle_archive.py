"""Bundle archives: deterministic packing, a verified unpack, and hostile archives refused."""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from pathlib import Path

import pytest

from core.bundle import BundleError, load_bundle
from core.bundle_archive import pack, unpack


def test_pack_is_deterministic_and_round_trips(tiny_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle, copy)
    (copy / "training_log.csv").write_text("epoch,loss\n")  # not part of the bundle proper
    first, second = pack(tiny_bundle), pack(copy)
    assert first.data == second.data and first.sha256 == second.sha256
    assert first.sha256 == hashlib.sha256(first.data).hexdigest()
    original = load_bundle(tiny_bundle)
    assert (first.name, first.version) == (original.name, original.version)
    with tarfile.open(fileobj=io.BytesIO(first.data)) as tar:
        assert tar.getnames() == ["config.json", "vocab.json", "weights.h5"]

    folder = unpack(first.data, first.sha256, tmp_path / "cache" / "v1")
    loaded = load_bundle(folder)
    assert loaded.version == original.version
    assert all((loaded.weights[k] == original.weights[k]).all() for k in original.weights)
    assert unpack(first.data, first.sha256, folder) == folder  # already there: kept
    assert [p.name for p in folder.parent.iterdir()] == ["v1"]  # no staging folder left


def test_a_corrupted_archive_is_not_unpacked(tiny_bundle: Path, tmp_path: Path) -> None:
    packed = pack(tiny_bundle)
    damaged = packed.data[:-100] + b"x" * 100
    with pytest.raises(BundleError, match="sha256 mismatch"):
        unpack(damaged, packed.sha256, tmp_path / "v1")
    assert not (tmp_path / "v1").exists()


@pytest.mark.parametrize("name", ["../evil", "sub/config.json", "/etc/passwd"])
def test_members_outside_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    data = buffer.getvalue()
    with pytest.raises(BundleError, match="not a plain file"):
        unpack(data, hashlib.sha256(data).hexdigest(), tmp_path / "v1")
    assert not (tmp_path / "v1").exists() and not (tmp_path / "evil").exists()


def test_a_broken_bundle_is_not_packed(tiny_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle, copy)
    (copy / "weights.h5").write_bytes(b"garbage")
    with pytest.raises(BundleError, match=r"weights\.h5"):
        pack(copy)
