"""Corpora: a shipped text by name (nietzsche, hongloumeng, shakespeare, tang), a file, or a folder."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from core import book

# Re-exported: the shipped corpora live in core (the bot needs them too; it never imports train).
from core.book import CORPORA_DIR as CORPORA_DIR
from core.book import HONGLOUMENG_SHA256 as HONGLOUMENG_SHA256
from core.book import NIETZSCHE_SHA256 as NIETZSCHE_SHA256
from core.book import SHIPPED as SHIPPED
from core.book import TANG_SHA256 as TANG_SHA256


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


def _decode(raw: bytes, where: Path) -> str:
    if b"\x00" in raw[:65536]:
        raise CorpusError(f"{where}: looks binary (NUL bytes); give a UTF-8 text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


_read_bytes = book.read_bytes


def shipped_corpus_path(name: str) -> Path:
    """The repository's copy of a shipped corpus (plain or gzip-compressed)."""
    path = book.shipped_corpus_path(name)
    if path is not None:
        return path
    raise CorpusError(f"the shipped corpus {name!r} is missing from {CORPORA_DIR}; restore it with git")


def _load_shipped(name: str) -> Corpus:
    path = shipped_corpus_path(name)
    raw = _read_bytes(path)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHIPPED[name]:
        raise CorpusError(f"{path}: not the shipped {name} text (sha256 {digest[:12]}...); git restore it")
    return Corpus(name, _decode(raw, path), digest, str(path))


def load_corpus(spec: str | Path) -> Corpus:
    """Load a shipped corpus by name, a UTF-8 text file, or every .txt file of a folder (sorted, joined)."""
    if str(spec) in SHIPPED:
        return _load_shipped(str(spec))
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise CorpusError(f"{path}: folder has no .txt files")
        text = "\n\n".join(_decode(_read_bytes(p), p) for p in files)
    elif path.is_file():
        text = _decode(_read_bytes(path), path)
    else:
        names = " or ".join(f"'{n}'" for n in SHIPPED)
        raise CorpusError(f"{path}: no such file or folder (or say {names} for a shipped text)")
    if not text.strip():
        raise CorpusError(f"{path}: the corpus is empty")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Corpus(path.stem, text, digest, str(path))
