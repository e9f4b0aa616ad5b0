"""Per-model novelty indexes and held-out passages, built off the event loop at start.

Each bundle's `Book` and `NoveltyIndex` are built in the background by `start()`; until a
model's is ready `check` answers None (the badge is simply absent) and `passage` None (no game
for it yet). Tokenizing the Chinese book with jieba takes seconds of pure Python, holding the
GIL: in a thread of the bot it slowed every request served meanwhile (under a 1.45-core CPU
quota the steady load's p95 rose to 1.3 s), so word-level books are tokenized in a child
process (`python -m core.book`) at the lowest priority (nice 19). Character books take milliseconds.
With a cache folder the child writes the ids there (core/book.py), and later starts map them:
no child, no jieba run, and the ids cost resident memory only for the pages searched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from core.book import Book, BookError
from core.bundle import Bundle
from core.memory import release_free_memory
from core.novelty import Novelty, NoveltyIndex
from core.tokenizers import UNKNOWN_ID

log = logging.getLogger(__name__)
PASSAGE_TRIES = 50
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # where `python -m core.book` finds `core`


class NoveltyService:
    """The books and novelty indexes of the loaded models, filled in as they are built."""

    def __init__(self, bundles: Mapping[str, Bundle], cache_dir: Path | None = None) -> None:
        """`cache_dir`: where books' token ids are kept between starts (None: tokenized each time)."""
        self._bundles = dict(bundles)  # until built: then only their vocabularies are kept
        self._cache_dir = cache_dir
        self.books: dict[str, Book] = {}
        self.indexes: dict[str, NoveltyIndex] = {}
        # The vocabulary each model's book must be tokenized with (its served version's).
        self._wanted = {name: tuple(bundle.tokenizer.tokens) for name, bundle in bundles.items()}
        self._task: asyncio.Task[None] | None = None
        self._rebuilds: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        """Build every index in a thread, one model after another (never blocks the loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._build_all(), name="novelty-index")

    async def wait_ready(self) -> None:
        """Until every index that can be built is built (tests, benchmarks)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Stop waiting for the builder (the thread finishes its current model on its own)."""
        for task in [self._task, *self._rebuilds.values()]:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def refresh(self, name: str, bundle: Bundle) -> None:
        """A new version of `name` is served (hot reload): its book is rebuilt only when its
        vocabulary differs (a fine-tuned version keeps its base's), dropped meanwhile, since
        token ids of another vocabulary would check and cut the wrong text."""
        tokens = tuple(bundle.tokenizer.tokens)
        if self._wanted.get(name) == tokens:
            return
        self._wanted[name] = tokens
        self.books.pop(name, None)
        self.indexes.pop(name, None)
        previous = self._rebuilds.pop(name, None)
        if previous is not None:
            previous.cancel()
        self._rebuilds[name] = asyncio.get_running_loop().create_task(
            self._build(name, bundle), name=f"novelty-index-{name}"
        )

    async def _build_all(self) -> None:
        bundles, self._bundles = self._bundles, {}  # not kept: a replaced model's memory is freed
        for name, bundle in bundles.items():
            await self._build(name, bundle)
        await asyncio.to_thread(release_free_memory)  # the suffix sorts' temporaries

    async def _build(self, name: str, bundle: Bundle) -> None:
        try:
            book = await book_of(bundle, self._cache_dir)
            index = await asyncio.to_thread(_index, book)
        except BookError as exc:
            log.info("no novelty index for %s: %s", name, exc)
            return
        except Exception:  # one unreadable book must not stop the others
            log.exception("building the novelty index for %s failed", name)
            return
        if self._wanted.get(name) != tuple(bundle.tokenizer.tokens):
            return  # built for a version replaced meanwhile by one with another vocabulary
        self.books[name] = book
        self.indexes[name] = index
        log.info("novelty index for %s ready (%d tokens)", name, len(book.training))

    def check(self, model: str, token_ids: Sequence[int]) -> Novelty | None:
        """What a sample of `model` copied from its book; None while (or if) there is no index."""
        index = self.indexes.get(model)
        return index.check(token_ids) if index is not None else None

    def passage(self, model: str, tokens: int, rng: np.random.Generator) -> list[int] | None:
        """`tokens` consecutive held-out token ids of `model`'s book (never trained on), preferably
        free of words the vocabulary lacks: an unknown token in the real ending would give it away."""
        book = self.books.get(model)
        if book is None or len(book.heldout) <= tokens:
            return None
        window = book.heldout[:tokens]
        for _ in range(PASSAGE_TRIES):
            start = int(rng.integers(0, len(book.heldout) - tokens))
            window = book.heldout[start : start + tokens]
            if not (window == UNKNOWN_ID).any():
                break
        return [int(i) for i in window]


async def book_of(bundle: Bundle, cache_dir: Path | None = None) -> Book:
    """The bundle's book: a word-level one tokenized in a child process unless it is cached."""
    if bundle.level != "word" or (
        cache_dir is not None and await asyncio.to_thread(Book.is_cached, bundle, cache_dir)
    ):
        return await asyncio.to_thread(Book.of, bundle, cache_dir)
    paths = [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    with tempfile.TemporaryDirectory(prefix="lstmbot-book-") as tmp:
        out = Path(tmp) / "book.npz"
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "core.book", str(bundle.path), str(out),
            *([str(cache_dir)] if cache_dir is not None else []),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        try:
            _, err = await child.communicate()
        except asyncio.CancelledError:  # the bot is stopping: so does the child
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
            raise
        reason = err.decode("utf-8", "replace").strip()
        if child.returncode == 2:
            raise BookError(reason)
        if child.returncode != 0:
            raise RuntimeError(f"tokenizing the book of {bundle.name} failed: {reason[-500:]}")
        # The child filled the cache where it could: map its file (else read the child's copy,
        # never tokenize here).
        if cache_dir is not None and await asyncio.to_thread(Book.is_cached, bundle, cache_dir):
            return await asyncio.to_thread(Book.of, bundle, cache_dir)
        return await asyncio.to_thread(Book.load, out)


def _index(book: Book) -> NoveltyIndex:
    index = NoveltyIndex(book.training)
    index.check(book.training[:16])  # compile the numba search here, not on the first sample
    return index
