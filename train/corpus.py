"""Corpora: read a text file, a folder of .txt files, or the book's Nietzsche text by name."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

# The book's corpus: where Keras' own example downloads it, and its exact contents.
NIETZSCHE_URL = "https://s3.amazonaws.com/text-datasets/nietzsche.txt"
NIETZSCHE_SHA256 = "9cb94a5f1f8d1359e2e018fa67306eba4ae03942b8c44643eececded39e096df"
# Places looked at before downloading: the team's shared corpora and Keras' download cache.
CORPUS_DIRS_ENV = "LSTMBOT_CORPORA"
_DEFAULT_CORPUS_DIRS = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "corpora",
    Path.home() / ".keras" / "datasets",
)


class CorpusError(ValueError):
    """A corpus that cannot be trained on; the message says why and what is needed."""


@dataclass(frozen=True)
class Corpus:
    """A training text with where it came from and its fingerprint."""

    name: str
    text: str
    sha256: str
    source: str

    @property
    def language(self) -> str:
        """ "zh" when most letters are CJK ideographs, else "en"."""
        sample = self.text[:200_000]
        cjk = sum(1 for ch in sample if "\u4e00" <= ch <= "\u9fff")
        letters = sum(1 for ch in sample if ch.isalpha())
        return "zh" if letters and cjk / letters > 0.5 else "en"


def corpus_dirs() -> list[Path]:
    """Folders searched for named corpora, `$LSTMBOT_CORPORA` first."""
    dirs = [Path(p) for p in os.environ.get(CORPUS_DIRS_ENV, "").split(os.pathsep) if p]
    return [*dirs, *_DEFAULT_CORPUS_DIRS]


def _decode(raw: bytes, where: Path) -> str:
    if b"\x00" in raw[:65536]:
        raise CorpusError(f"{where}: looks binary (NUL bytes); give a UTF-8 text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _read_file(path: Path) -> str:
    return _decode(path.read_bytes(), path)


def _find_nietzsche() -> Path:
    """A local copy of the book's file if one exists, else download it with Keras."""
    for folder in corpus_dirs():
        candidate = folder / "nietzsche.txt"
        if candidate.is_file():
            return candidate
    import keras  # only needed to download, which needs the network

    try:
        return Path(keras.utils.get_file("nietzsche.txt", origin=NIETZSCHE_URL, file_hash=NIETZSCHE_SHA256))
    except Exception as exc:
        raise CorpusError(
            f"could not download the Nietzsche corpus ({exc}); put nietzsche.txt in one of "
            f"{', '.join(str(d) for d in corpus_dirs())} or pass its path"
        ) from None


def load_corpus(spec: str | Path) -> Corpus:
    """Load `nietzsche`, a UTF-8 text file, or every .txt file of a folder (sorted, joined)."""
    if str(spec) == "nietzsche":
        path = _find_nietzsche()
        raw = path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        if digest != NIETZSCHE_SHA256:
            raise CorpusError(f"{path}: not the book's nietzsche.txt (sha256 {digest[:12]}...)")
        return Corpus("nietzsche", _decode(raw, path), digest, str(path))
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise CorpusError(f"{path}: folder has no .txt files")
        text = "\n\n".join(_read_file(p) for p in files)
    elif path.is_file():
        text = _read_file(path)
    else:
        raise CorpusError(f"{path}: no such file or folder (or say 'nietzsche' for the book's text)")
    if not text.strip():
        raise CorpusError(f"{path}: the corpus is empty")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Corpus(path.stem, text, digest, str(path))
