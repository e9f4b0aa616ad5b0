"""Arrays derived from a bundle or a corpus, computed once and kept as .npy files, memory-mapped.

What goes here is a pure function of inputs named by the key (a sha256 over the inputs' own
sha256 and the settings that shape the result), so a changed input is a new file, never a stale
answer. Mapped read-only, an array costs resident memory only for the pages read (the word
model's 8000-row input table: the rows of the tokens actually generated), and those pages are
the kernel's to drop under memory pressure, being clean copies of the file.

Writes go through a temporary file and a rename: a crash or a second process writing the same
entry never leaves a torn file. No cache folder (None), or one that cannot be written, means the
array is computed and kept in memory as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)
FORMAT = 1  # bump when what an entry holds changes meaning


def cache_key(**parts: Any) -> str:
    """A sha256 over JSON-able parts (input digests, settings, versions) and FORMAT."""
    text = json.dumps({"format": FORMAT, **parts}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def entry_path(cache_dir: Path, kind: str, key: str) -> Path:
    """Where the entry of `kind` ("table0", "book") with `key` lives."""
    return cache_dir / f"{kind}-{key[:32]}.npy"


def load_entry(path: Path, dtype: type[np.generic], shape: tuple[int | None, ...]) -> npt.NDArray[Any] | None:
    """The entry memory-mapped read-only, or None where it is absent or not of that dtype and
    shape (None in `shape`: any length there)."""
    try:
        array: npt.NDArray[Any] = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    fits = len(array.shape) == len(shape)
    fits = fits and all(w is None or w == n for w, n in zip(shape, array.shape, strict=False))
    if array.dtype != dtype or not fits or not array.flags.c_contiguous:
        return None
    return array


def cached_array(
    cache_dir: Path | None,
    kind: str,
    key: str,
    build: Callable[[], npt.NDArray[Any]],
    *,
    dtype: type[np.generic],
    shape: tuple[int | None, ...],
) -> npt.NDArray[Any]:
    """The cached entry if there is a sound one; else `build()`, stored, and handed back mapped."""
    if cache_dir is None:
        return np.ascontiguousarray(build(), dtype=dtype)
    path = entry_path(cache_dir, kind, key)
    found = load_entry(path, dtype, shape)
    if found is not None:
        return found
    built = np.ascontiguousarray(build(), dtype=dtype)
    try:
        store(path, built)
    except OSError as exc:  # a read-only or full disk: serve from memory, as without a cache
        log.warning("could not write the cache file %s: %s", path, exc)
        return built
    mapped = load_entry(path, dtype, shape)
    return mapped if mapped is not None else built


def store(path: Path, array: npt.NDArray[Any]) -> None:
    """Write `array` to `path` atomically (see `write_atomically`)."""
    write_atomically(path, lambda fh: np.save(fh, array, allow_pickle=False))


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write a cache file through `write`: a temporary file in the same folder, then a rename,
    so a crash or a second writer never leaves a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp_name, 0o644)  # derived from shipped files, nothing secret: other users may map it
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
