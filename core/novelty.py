"""How much of a sample the model copied from its book: the longest verbatim run, and new 8-grams.

The index is the suffix array of the training text's token ids (characters for char models,
words for word models), built once per bundle by libdivsufsort (`pydivsufsort`). Checking a
sample finds, for every position, the longest prefix of the rest of the sample that occurs in
the book (its "matching statistic") by binary search over the suffix array: the suffix that
shares most with a query sits next to where the query would be inserted. The search runs in C
(core/qsearch.c, or numba where the C kernel was not built), so a 400-token sample takes well
under a millisecond.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydivsufsort import divsufsort

_search: Any
try:
    from core.c_kernel import matching_statistics_c as _search
except ImportError:  # the C kernel was not built: the same search in numba
    from core.numba_novelty import _matching_statistics as _search

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
NGRAM = 8  # a sample's 8-grams that never occur in the book count as new
MAX_BUCKETS = 1 << 20  # two-token buckets up to this many (8 MB); one-token buckets above
# A copied run shorter than this is ordinary phrasing, not worth a warning on its own: a hot
# (T=1.2) sample of the shipped char model shares runs of ~20 characters with its book.
BADGE_AT = {"char": 30, "word": 8}
# Below this share of new 8-grams a sample is pieced together from the book's phrases even
# without one long run (greedy samples of the shipped char model: ~9 %; T=1.2: ~50 %).
STITCHED_BELOW = 0.25


@dataclass(frozen=True)
class Novelty:
    """What a sample copied: its longest run found verbatim in the book, and its share of new 8-grams."""

    longest_copied: int  # tokens
    new_ngram_share: float  # of the sample's 8-grams, the share absent from the book (1.0 if none)


def copies_the_book(novelty: Novelty, level: str) -> bool:
    """Whether a sample copied enough to be flagged (the bot's novelty badge; `lstmbot learn`'s
    copy gate): one run of BADGE_AT tokens found verbatim, or under STITCHED_BELOW new 8-grams."""
    if novelty.longest_copied >= BADGE_AT.get(level, BADGE_AT["char"]):
        return True
    return novelty.new_ngram_share < STITCHED_BELOW


class NoveltyIndex:
    """A suffix array over a book's token ids, to measure how much of a sample is copied."""

    def __init__(self, book_ids: Sequence[int] | npt.NDArray[np.integer]) -> None:
        self.text: I32 = np.ascontiguousarray(book_ids, dtype=np.int32)
        if len(self.text) == 0:
            raise ValueError("the novelty index needs a non-empty book")
        self.suffixes: I64 = np.asarray(divsufsort(self.text), dtype=np.int64)
        # Where the suffixes of each one- or two-token prefix begin (the keys are nondecreasing in
        # suffix order); two tokens where the table stays small (a char book's ~60 squared).
        self.vocab = int(self.text.max()) + 1
        self.depth = 2 if self.vocab * (self.vocab + 1) <= MAX_BUCKETS else 1
        keys = self.text[self.suffixes].astype(np.int64)
        if self.depth == 2:
            following = np.full(len(self.text), -1, dtype=np.int64)
            following[:-1] = self.text[1:]
            keys = keys * (self.vocab + 1) + following[self.suffixes] + 1
        count = self.vocab * (self.vocab + 1) if self.depth == 2 else self.vocab
        self.buckets: I64 = np.searchsorted(keys, np.arange(count + 1)).astype(np.int64)

    def check(self, sample_ids: Sequence[int] | npt.NDArray[np.integer]) -> Novelty:
        """The longest run of the sample found in the book, and the share of its 8-grams that are new."""
        query = np.ascontiguousarray(sample_ids, dtype=np.int32)
        if len(query) == 0:
            return Novelty(0, 1.0)
        matched = _search(self.text, self.suffixes, query, self.buckets, self.vocab, self.depth)
        windows = len(query) - NGRAM + 1
        new_share = float((matched[:windows] < NGRAM).mean()) if windows > 0 else 1.0
        return Novelty(int(matched.max()), new_share)
