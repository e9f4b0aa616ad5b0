"""Per-model novelty indexes and held-out passages, built off the event loop at start.

Tokenizing a book takes seconds for jieba (the Chinese corpus), so each bundle's `Book` and
`NoveltyIndex` are built in a worker thread started by `start()`; until a model's is ready
`check` answers None (the badge is simply absent) and `passage` None (no game for it yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence

import numpy as np

from core.book import Book, BookError
from core.bundle import Bundle
from core.novelty import Novelty, NoveltyIndex
from core.tokenizers import UNKNOWN_ID

log = logging.getLogger(__name__)
PASSAGE_TRIES = 50


class NoveltyService:
    """The books and novelty indexes of the loaded models, filled in as they are built."""

    def __init__(self, bundles: Mapping[str, Bundle]) -> None:
        self._bundles = dict(bundles)
        self.books: dict[str, Book] = {}
        self.indexes: dict[str, NoveltyIndex] = {}
        self._task: asyncio.Task[None] | None = None

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
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _build_all(self) -> None:
        for name, bundle in self._bundles.items():
            try:
                book, index = await asyncio.to_thread(_build, bundle)
            except BookError as exc:
                log.info("no novelty index for %s: %s", name, exc)
                continue
            except Exception:  # one unreadable book must not stop the others
                log.exception("building the novelty index for %s failed", name)
                continue
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


def _build(bundle: Bundle) -> tuple[Book, NoveltyIndex]:
    book = Book.of(bundle)
    index = NoveltyIndex(book.training)
    index.check(book.training[:16])  # compile the numba search here, not on the first sample
    return book, index
