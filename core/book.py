"""The book a model was trained on: a shipped corpus found by its sha256, tokenized and split.

Bundles record `meta["corpus"]["sha256"]` and the training config's `heldout_fraction`; the
training split is `cut = int(len(ids) * (1 - heldout_fraction))` (train/data.py), so the
same cut here gives the ids the model read (for the novelty index) and the held-out ids it
never saw (for "Real or dream?"). Only the shipped corpora are known; a bundle trained on
another text has no book. A bundle trained on an earlier copy of a shipped corpus (its sha256
recorded, the name the same: the shipped hongloumeng-word predates the corpus clean-up) gets
the current copy, marked inexact, with a margin after the cut so that held-out passages stay
clear of text the model may have read.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from core.bundle import Bundle, load_bundle

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
    def of(cls, bundle: Bundle) -> Book:
        """Find, check and tokenize the bundle's corpus (seconds for jieba: call it in a thread)."""
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
        if exact and hashlib.sha256(raw).hexdigest() != sha:
            raise BookError(f"{path}: not the text {bundle.name} was trained on (sha256 differs)")
        text = raw.decode("utf-8-sig")
        training_meta = bundle.meta.get("training")
        fraction = DEFAULT_HELDOUT_FRACTION
        if isinstance(training_meta, dict) and isinstance(training_meta.get("heldout_fraction"), int | float):
            fraction = float(training_meta["heldout_fraction"])
        ids = np.asarray(bundle.tokenizer.encode(text), dtype=np.int32)
        cut = int(len(ids) * (1 - fraction))  # the cut train/data.py split_corpus makes
        margin = 0 if exact else int(len(ids) * INEXACT_MARGIN)
        return cls(name, ids[:cut], ids[cut + margin :], exact)

    def save(self, path: Path) -> None:
        """Write the book's ids to an .npz file (`load` reads it back)."""
        np.savez(path, training=self.training, heldout=self.heldout, name=self.name, exact=self.exact)

    @classmethod
    def load(cls, path: Path) -> Book:
        """A book written by `save`."""
        with np.load(path) as data:
            return cls(str(data["name"]), data["training"], data["heldout"], bool(data["exact"]))


def main(argv: list[str]) -> int:
    """`python -m core.book BUNDLE OUT.npz`: tokenize a bundle's book into OUT.

    bot/novelty.py runs this in a child process for word-level bundles: jieba holds the GIL
    for seconds, which in the bot's own process would slow every request served meanwhile.
    Exit status 2 means the bundle has no book (the reason on stderr).
    """
    os.nice(19)  # background preparation: it runs on what the serving processes leave idle
    try:
        book = Book.of(load_bundle(argv[0]))
    except BookError as exc:
        print(exc, file=sys.stderr)
        return 2
    book.save(Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
