"""The book a model was trained on: a shipped corpus found by its sha256, tokenized and split.

Bundles record `meta["corpus"]["sha256"]` and the training config's `heldout_fraction`; the
training split is `cut = int(len(ids) * (1 - heldout_fraction))` (train/data.py), so the
same cut here gives the ids the model read (for the novelty index) and the held-out ids it
never saw (for "Real or dream?"). Only the shipped corpora are known; a bundle trained on
another text has no book. A bundle trained on an earlier copy of a shipped corpus (its sha256
recorded, the name the same: the shipped hongloumeng-word predates the corpus clean-up) gets
the current copy, marked inexact, with a margin after the cut so that held-out passages stay
clear of text the model may have read.

Tokenizing the Chinese book took ~10 s and ~200 MB with jieba (~1 s with jieba-rs now): with a
cache folder, the ids are kept as an .npy file keyed by the corpus's sha256 and the tokenizer
(its vocabulary and options, and the segmenter's version), so later starts map the file
instead, and a changed corpus or vocabulary is tokenized afresh. The text is tokenized a stretch
of lines at a time: neither tokenizer looks across a newline (jieba cuts Han runs, which
newlines end), so the ids are those of the whole.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from core.bundle import Bundle, load_bundle
from core.cache import cache_key, cached_array, entry_path, load_entry
from core.tokenizers import Tokenizer

# The corpora shipped in the repository (see corpora/README.md for sources and licences). An
# installed copy (the Docker image) has no repository around it: CORPORA_DIR names the folder.
CORPORA_DIR = Path(os.environ.get("CORPORA_DIR") or Path(__file__).resolve().parent.parent / "corpora")
NIETZSCHE_SHA256 = "9cb94a5f1f8d1359e2e018fa67306eba4ae03942b8c44643eececded39e096df"
HONGLOUMENG_SHA256 = "766d067ceaf92ecd4cb5682fb901bfbacf3fc1cdaba0f04a1cc7b97583dd670f"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
# Of the uncompressed text: the file ships as tang.txt.gz (train/tang_corpus.py builds it).
TANG_SHA256 = "e6c63cbc4858b2232e11511d670e75464d1274c6610adc2149553902d75c5a06"
SHIPPED = {
    "nietzsche": NIETZSCHE_SHA256,
    "hongloumeng": HONGLOUMENG_SHA256,
    "shakespeare": SHAKESPEARE_SHA256,
    "tang": TANG_SHA256,
}
DEFAULT_HELDOUT_FRACTION = 0.1
INEXACT_MARGIN = 0.02  # of the tokens: skipped after the cut when the text is not the same copy
CHUNK_CHARS = 1 << 16  # tokenized at a time (whole lines): the token lists stay a few MB


class BookError(LookupError):
    """The book of a bundle cannot be found (not a shipped corpus, or the file is gone)."""


def shipped_corpus_path(name: str) -> Path | None:
    """The repository's copy of a shipped corpus (plain or gzip-compressed), None if absent."""
    for candidate in (CORPORA_DIR / f"{name}.txt", CORPORA_DIR / f"{name}.txt.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_bytes(path: Path) -> bytes:
    """A file's bytes; `.gz` files are decompressed, so a corpus may ship compressed."""
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


def shipped_name_of(sha256: str) -> str | None:
    """The shipped corpus with this sha256, if any."""
    return next((name for name, digest in SHIPPED.items() if digest == sha256), None)


@dataclass(frozen=True)
class Book:
    """A bundle's training text as token ids: what it was trained on, and what it never saw."""

    name: str
    training: npt.NDArray[np.int32]
    heldout: npt.NDArray[np.int32]
    exact: bool = True  # False: another copy of the same-named corpus than the one trained on

    @classmethod
    def of(cls, bundle: Bundle, cache_dir: Path | None = None) -> Book:
        """Find, check and tokenize the bundle's corpus (seconds for jieba: call it in a thread),
        or map its ids from `cache_dir` where they were kept by an earlier call."""
        corpus = _Corpus.of(bundle)
        ids: npt.NDArray[np.int32] = cached_array(
            cache_dir, "book", corpus.key, corpus.encode, dtype=np.int32, shape=(None,)
        )
        cut = int(len(ids) * (1 - corpus.fraction))  # the cut train/data.py split_corpus makes
        margin = 0 if corpus.exact else int(len(ids) * INEXACT_MARGIN)
        return cls(corpus.name, ids[:cut], ids[cut + margin :], corpus.exact)

    @staticmethod
    def is_cached(bundle: Bundle, cache_dir: Path) -> bool:
        """Whether `of(bundle, cache_dir)` will map its ids from the cache (no tokenizing)."""
        key = _Corpus.of(bundle).key
        return load_entry(entry_path(cache_dir, "book", key), np.int32, (None,)) is not None

    def save(self, path: Path) -> None:
        """Write the book's ids to an .npz file (`load` reads it back)."""
        np.savez(path, training=self.training, heldout=self.heldout, name=self.name, exact=self.exact)

    @classmethod
    def load(cls, path: Path) -> Book:
        """A book written by `save`."""
        with np.load(path) as data:
            return cls(str(data["name"]), data["training"], data["heldout"], bool(data["exact"]))


@dataclass(frozen=True)
class _Corpus:
    """A bundle's corpus, read and checked: what its ids are made from and keyed by."""

    name: str
    raw: bytes
    tokenizer: Tokenizer
    exact: bool
    fraction: float  # held out
    key: str  # the cache key of its ids

    @classmethod
    def of(cls, bundle: Bundle) -> _Corpus:
        corpus = bundle.meta.get("corpus")
        sha = str(corpus.get("sha256", "")) if isinstance(corpus, dict) else ""
        name = shipped_name_of(sha)
        recorded = str(corpus.get("name", "")) if isinstance(corpus, dict) else ""
        exact = name is not None
        if name is None and recorded in SHIPPED:
            name = recorded  # an earlier copy of a shipped corpus: the current one stands in
        if name is None:
            raise BookError(f"{bundle.name}: trained on a corpus that is not shipped (sha256 {sha[:12]})")
        path = shipped_corpus_path(name)
        if path is None:
            raise BookError(f"{bundle.name}: the shipped corpus {name!r} is missing from {CORPORA_DIR}")
        raw = read_bytes(path)
        digest = hashlib.sha256(raw).hexdigest()
        if exact and digest != sha:
            raise BookError(f"{path}: not the text {bundle.name} was trained on (sha256 differs)")
        training_meta = bundle.meta.get("training")
        fraction = DEFAULT_HELDOUT_FRACTION
        if isinstance(training_meta, dict) and isinstance(training_meta.get("heldout_fraction"), int | float):
            fraction = float(training_meta["heldout_fraction"])
        return cls(name, raw, bundle.tokenizer, exact, fraction, _ids_key(digest, bundle.tokenizer))

    def encode(self) -> npt.NDArray[np.int32]:
        """The whole text's token ids, tokenized a stretch of whole lines at a time."""
        text = self.raw.decode("utf-8-sig")
        parts: list[npt.NDArray[np.int32]] = []
        start = 0
        while start < len(text):
            end = text.find("\n", start + CHUNK_CHARS)
            end = len(text) if end < 0 else end + 1
            parts.append(np.asarray(self.tokenizer.encode(text[start:end]), dtype=np.int32))
            start = end
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def _ids_key(corpus_sha256: str, tokenizer: Tokenizer) -> str:
    """What a book's ids depend on: the text, the vocabulary and its options, the segmenter."""
    described = json.dumps(tokenizer.to_dict(), sort_keys=True, ensure_ascii=False).encode("utf-8")
    segmenter = f"rjieba {importlib.metadata.version('rjieba')}" if tokenizer.kind == "word" else None
    return cache_key(
        what="book ids",
        corpus=corpus_sha256,
        tokenizer=hashlib.sha256(described).hexdigest(),
        segmenter=segmenter,
    )


def main(argv: list[str]) -> int:
    """`python -m core.book BUNDLE OUT.npz [CACHE_DIR]`: tokenize a bundle's book into OUT (and
    into CACHE_DIR's entry for it).

    bot/novelty.py runs this in a child process for word-level bundles: jieba holds the GIL
    for seconds, which in the bot's own process would slow every request served meanwhile.
    Exit status 2 means the bundle has no book (the reason on stderr).
    """
    os.nice(19)  # background preparation: it runs on what the serving processes leave idle
    cache_dir = Path(argv[2]) if len(argv) > 2 else None
    try:
        book = Book.of(load_bundle(argv[0], weights="disk"), cache_dir)
    except BookError as exc:
        print(exc, file=sys.stderr)
        return 2
    book.save(Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
