"""Model bundles: one self-describing folder with the config, the vocabulary and the weights.

    config.json   format version, architecture, tokenizer kind, training recipe and metrics,
                  corpus sha256, and the sha256 of the two files below
    vocab.json    the tokenizer (kind, options, tokens)
    weights.h5    one float32 dataset per weight, named as in `ModelConfig.weight_shapes`

Loading checks every part against the others and raises `BundleError` naming the file and the
problem, so a broken bundle never surfaces as a shape error deep inside numpy or Keras. The
checksums are required (a bundle without them is refused, not loaded unchecked) and every
weight must be finite.
Loading needs numpy and h5py only. `load_bundle(path, weights="disk")` checks the weights as
usual and then lets them go: the bundle reads each one from weights.h5 again when asked (a server
packs them to int8 once and would otherwise keep the float32 copies, ~30 MB for the two shipped
models, for nothing). `weights="lazy"` checks every file's sha256 but reads and checks the weights
only when one is first asked for: a generator whose int8 weights are cached under that sha256
(core/packed.py) never parses the file, and h5py is imported only when one is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from core.config import ModelConfig
from core.tokenizers import Tokenizer

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.json"
WEIGHTS_FILE = "weights.h5"
CHECKED_FILES = (VOCAB_FILE, WEIGHTS_FILE)  # config.json must record the sha256 of each
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BundleError(Exception):
    """A bundle is missing, unreadable or inconsistent; the message says which file and why."""


@dataclass(frozen=True)
class Bundle:
    """A loaded model: architecture, tokenizer, weights and the metadata that came with them."""

    path: Path
    name: str
    version: str
    model: ModelConfig
    tokenizer: Tokenizer
    weights: Mapping[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""  # of weights.h5 as loaded ("" for a bundle built in memory)

    @property
    def level(self) -> str:
        """ "char" or "word": what one generated token is."""
        return self.tokenizer.kind

    @property
    def language(self) -> str:
        """The corpus language recorded at training time ("en", "zh", ...)."""
        return str(self.meta.get("language", "en" if self.level == "char" else "zh"))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_weights(path: Path, weights: Mapping[str, np.ndarray]) -> None:
    import h5py  # here, not at the top: a cold `lstmbot generate` with cached weights never needs it

    with h5py.File(path, "w") as h5:
        for name, value in weights.items():
            h5.create_dataset(name, data=np.asarray(value, dtype=np.float32))


def _replace_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, then rename it over `target`."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def save_bundle(
    path: Path,
    *,
    model: ModelConfig,
    tokenizer: Tokenizer,
    weights: Mapping[str, np.ndarray],
    name: str | None = None,
    version: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a bundle folder; other files in it (training logs, checkpoints) are left alone.

    Each file is replaced atomically and config.json, which records the others' sha256, goes
    last: a crash part-way leaves a bundle that fails to load with a clear message, never one
    that loads with mismatched parts.
    """
    if tokenizer.vocab_size != model.vocab_size:
        raise BundleError(
            f"tokenizer has {tokenizer.vocab_size} tokens but the model expects {model.vocab_size}"
        )
    _check_weights(weights, model, WEIGHTS_FILE)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    _replace_atomically(path / VOCAB_FILE, tokenizer.save)
    _replace_atomically(path / WEIGHTS_FILE, lambda tmp: _write_weights(tmp, weights))
    now = datetime.now(UTC)
    config = {
        "format_version": FORMAT_VERSION,
        "name": name or path.name,
        "version": version or now.strftime("%Y%m%d%H%M%S"),
        "created": now.isoformat(timespec="seconds"),
        "model": model.to_dict(),
        "tokenizer": {"kind": tokenizer.kind, "vocab_size": tokenizer.vocab_size},
        "files": {
            VOCAB_FILE: sha256_file(path / VOCAB_FILE),
            WEIGHTS_FILE: sha256_file(path / WEIGHTS_FILE),
        },
        **dict(meta or {}),
    }
    text = json.dumps(config, indent=2, ensure_ascii=False) + "\n"

    def write_config(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    _replace_atomically(path / CONFIG_FILE, write_config)
    return path


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BundleError(f"{path}: missing (a bundle needs {CONFIG_FILE}, {VOCAB_FILE}, {WEIGHTS_FILE})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BundleError(f"{path}: expected a JSON object")
    return data


def _check_weights(weights: Mapping[str, np.ndarray], model: ModelConfig, where: str) -> None:
    expected = model.weight_shapes()
    missing = sorted(set(expected) - set(weights))
    if missing:
        raise BundleError(f"{where}: missing weights {', '.join(missing)}")
    unexpected = sorted(set(weights) - set(expected))
    if unexpected:
        raise BundleError(f"{where}: weights the config does not describe: {', '.join(unexpected)}")
    for name, shape in expected.items():
        got = tuple(np.shape(weights[name]))
        if got != shape:
            raise BundleError(f"{where}: {name} has shape {got}, the config says {shape}")
        bad = int(np.size(weights[name]) - np.count_nonzero(np.isfinite(weights[name])))
        if bad:
            # A diverged training run: every sample from it would be garbage or the unknown token.
            plural = "s" if bad > 1 else ""
            raise BundleError(f"{where}: {name} has {bad} non-finite value{plural} (NaN or inf)")


def _check_files(path: Path, files: object) -> None:
    """Every part must have its sha256 in config.json and match it: no checksum, no load."""
    where = path / CONFIG_FILE
    recorded = files if isinstance(files, dict) else {}
    missing = [name for name in CHECKED_FILES if name not in recorded]
    if missing:
        raise BundleError(
            f"{where}: no sha256 recorded for {', '.join(missing)} (every bundle save_bundle "
            'writes lists them under "files"; an unchecked bundle is not loaded)'
        )
    for file_name, expected_sha in recorded.items():
        if not isinstance(expected_sha, str) or not _SHA256.fullmatch(expected_sha):
            raise BundleError(f"{where}: the sha256 recorded for {file_name} is malformed: {expected_sha!r}")
        # A name is a plain file of the bundle's own folder: "../../etc/hostname" or a link out
        # of it would read (and hash) a file the bundle does not own.
        file_path = path / str(file_name)
        inside = file_path.resolve().parent == path.resolve()
        if not inside or Path(str(file_name)).name != file_name:
            raise BundleError(f"{where}: {file_name!r} is not a file of the bundle's own folder")
        if not file_path.is_file():
            raise BundleError(f"{file_path}: missing")
        if sha256_file(file_path) != expected_sha:
            raise BundleError(
                f"{file_path}: contents differ from what {CONFIG_FILE} records "
                "(sha256 mismatch: truncated, corrupted or replaced)"
            )


def _signature(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class WeightsOnDisk(Mapping[str, np.ndarray]):
    """A loaded bundle's weights, read from weights.h5 when asked instead of kept in memory.

    The file's sha256 was checked when the bundle loaded; a file replaced since (another inode,
    size or mtime) is hashed again and refused with BundleError unless it still has the same
    sha256, so a retrained bundle written over this one never passes for it. `model`: the
    weights' names, shapes and finiteness are not checked yet (`weights="lazy"`): the first read
    parses the whole file and checks it, raising BundleError as loading would have.
    """

    def __init__(
        self,
        path: Path,
        sha256: str,
        names: list[str],
        signature: tuple[int, int, int],
        model: ModelConfig | None = None,
    ) -> None:
        self.path = path
        self.sha256 = sha256
        self._names = names
        self._signature = signature
        self._unchecked_model = model

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._names:
            raise KeyError(name)
        self._check()
        if self._unchecked_model is not None:
            arrays = _read_weights(self.path)
            _check_weights(arrays, self._unchecked_model, str(self.path))
            self._unchecked_model = None
            return arrays[name]
        import h5py

        with h5py.File(self.path, "r") as h5:
            return np.asarray(h5[name][()], dtype=np.float32)

    @property
    def checked(self) -> bool:
        """Whether the contents were read and checked (at load, or by a first read since)."""
        return self._unchecked_model is None

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def _check(self) -> None:
        try:
            signature = _signature(self.path)
        except OSError as exc:
            raise BundleError(f"{self.path}: gone since the bundle was loaded ({exc})") from None
        if signature == self._signature:
            return
        if sha256_file(self.path) != self.sha256:
            raise BundleError(f"{self.path}: replaced since the bundle was loaded (sha256 differs)")
        self._signature = signature


def _read_weights(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise BundleError(f"{path}: missing (the model weights)")
    import h5py

    weights: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as h5:

            def visit(name: str, obj: object) -> None:
                if isinstance(obj, h5py.Dataset):
                    weights[name] = np.asarray(obj[()], dtype=np.float32)

            h5.visititems(visit)
    except (OSError, KeyError, ValueError) as exc:
        raise BundleError(f"{path}: unreadable weights file, truncated or not HDF5 ({exc})") from None
    return weights


def load_bundle(path: Path | str, *, weights: Literal["memory", "disk", "lazy"] = "memory") -> Bundle:
    """Load and cross-check a bundle folder; raise BundleError with the file and the mismatch.

    `weights="disk"`: check them all, then keep none in memory (`WeightsOnDisk`). `"lazy"`: check
    the file's sha256 now, its contents on the first read (which may raise BundleError then)."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path}: no such model folder")
    config_path = path / CONFIG_FILE
    config = _read_json(config_path)
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(f"{config_path}: format_version {version!r}, this program reads {FORMAT_VERSION}")
    try:
        model = ModelConfig.from_dict(dict(config["model"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{config_path}: bad 'model' section ({exc})") from None

    weights_path = path / WEIGHTS_FILE
    signature = _signature(weights_path) if weights_path.is_file() else (0, 0, 0)  # before hashing it
    _check_files(path, config.get("files"))

    vocab_path = path / VOCAB_FILE
    try:
        tokenizer = Tokenizer.from_dict(_read_json(vocab_path))
    except ValueError as exc:
        raise BundleError(f"{vocab_path}: {exc}") from None
    if tokenizer.vocab_size != model.vocab_size:
        raise BundleError(
            f"{vocab_path}: {tokenizer.vocab_size} tokens, but {CONFIG_FILE} says the model "
            f"has a vocabulary of {model.vocab_size}"
        )
    declared_kind = dict(config.get("tokenizer", {})).get("kind", tokenizer.kind)
    if declared_kind != tokenizer.kind:
        raise BundleError(
            f"{vocab_path}: a {tokenizer.kind} tokenizer, but {CONFIG_FILE} says {declared_kind}"
        )

    weights_sha256 = str(dict(config["files"])[WEIGHTS_FILE])
    kept: Mapping[str, np.ndarray]
    if weights == "lazy":
        kept = WeightsOnDisk(weights_path, weights_sha256, list(model.weight_shapes()), signature, model)
    else:
        arrays = _read_weights(weights_path)
        _check_weights(arrays, model, str(weights_path))
        let_go = weights == "disk"
        kept = WeightsOnDisk(weights_path, weights_sha256, list(arrays), signature) if let_go else arrays

    meta = {k: v for k, v in config.items() if k not in ("model", "files", "format_version")}
    return Bundle(
        path=path,
        name=str(config.get("name", path.name)),
        version=str(config.get("version", "0")),
        model=model,
        tokenizer=tokenizer,
        weights=kept,
        meta=meta,
        weights_sha256=weights_sha256,
    )
