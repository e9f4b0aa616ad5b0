"""A bundle as one byte string: what the model registry stores, and unpacking it again.

`pack` writes the bundle's own files (config.json and every file it lists with a sha256:
vocab.json, weights.h5) into an uncompressed tar, members sorted, owners and times zeroed, so
the same bundle always packs to the same bytes and the same sha256. Training logs and
checkpoints stay out. Float32 weights barely compress (under 10%), so no gzip: it would cost a
second of CPU per replica per version for almost nothing.

`unpack` checks the archive's sha256 before reading it, accepts only regular files with plain
names (no folders, links or "../"), writes them into a fresh folder and renames it into place,
so a half-written folder never carries the final name and two processes of one host unpacking
the same version at once both end with one complete folder. The bundle is then loaded with
`load_bundle` as usual, which checks every file against config.json.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.bundle import CONFIG_FILE, BundleError, load_bundle


@dataclass(frozen=True)
class Packed:
    """A bundle packed for the registry: its identity, the archive and the archive's sha256."""

    name: str
    version: str
    data: bytes
    sha256: str
    meta: dict[str, Any]  # config.json without the model section and the checksums


def pack(folder: Path | str) -> Packed:
    """Load (and so fully check) the bundle in `folder`, then pack its own files."""
    folder = Path(folder)
    bundle = load_bundle(folder)  # a broken bundle is refused here, not by every replica later
    listed = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8")).get("files", {})
    names = [CONFIG_FILE, *sorted(str(name) for name in listed)]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            content = (folder / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o644, 0
            tar.addfile(info, io.BytesIO(content))
    data = buffer.getvalue()
    return Packed(
        name=bundle.name,
        version=bundle.version,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        meta=dict(bundle.meta),
    )


def unpack(data: bytes, sha256: str, target: Path) -> Path:
    """Unpack a verified archive into the folder `target` (created; kept if it exists)."""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise BundleError(f"{target.name}: archive sha256 mismatch (stored {sha256[:12]}…): not unpacked")
    if target.is_dir():
        return target  # unpacked before (this process or another one on this host)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _extract(data, staging, target.name)
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():
                raise
            # another process renamed its copy first: theirs is complete, ours goes
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _extract(data: bytes, folder: Path, label: str) -> None:
    seen: set[str] = set()
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                name = member.name
                plain = name == Path(name).name and name not in ("", ".", "..")
                if not member.isreg() or not plain or name in seen:
                    raise BundleError(f"{label}: archive member {name!r} is not a plain file of a bundle")
                seen.add(name)
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has contents
                (folder / name).write_bytes(source.read())
    except tarfile.TarError as exc:
        raise BundleError(f"{label}: not a bundle archive ({exc})") from None
    if CONFIG_FILE not in seen:
        raise BundleError(f"{label}: archive has no {CONFIG_FILE}")
