"""How much of a sample the model copied from its book: the longest verbatim run, and new 8-grams.

The index is the suffix array of the training text's token ids (characters for char models,
words for word models), built once per bundle by libdivsufsort (`pydivsufsort`). Checking a
sample finds, for every position, the longest prefix of the rest of the sample that occurs in
the book (its "matching statistic") by binary search over the suffix array: the suffix that
shares most with a query sits next to where the query would be inserted. The search runs in
numba, so a 400-token sample takes well under a millisecond.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt
from pydivsufsort import divsufsort

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


@numba.njit(cache=True, nogil=True)
def _common_prefix(text: I32, start: int, query: I32, q_start: int) -> tuple[int, int]:
    """Length of the common prefix of text[start:] and query[q_start:], and the order (-1, 0, 1)."""
    n, m = len(text), len(query)
    k = 0
    while start + k < n and q_start + k < m:
        a, b = text[start + k], query[q_start + k]
        if a != b:
            return k, (1 if a < b else -1)  # 1: the text suffix sorts before the query
        k += 1
    if q_start + k == m:
        return k, 0  # the whole query matched
    return k, 1  # the text ran out first: a proper prefix sorts first


@numba.njit(cache=True, nogil=True)
def _matching_statistics(text: I32, suffixes: I64, query: I32, buckets: I64, vocab: int, depth: int) -> I64:
    """For each i, the length of the longest prefix of query[i:] that occurs in text.

    `buckets` holds where the suffixes starting with each one-token (depth 1) or two-token
    (depth 2) prefix begin, so each binary search runs among the few suffixes that share the
    query's first tokens instead of over the whole array (~2x quicker on the char book).
    """
    out = np.zeros(len(query), dtype=np.int64)
    width = vocab + 1  # depth 2: key t0 * width + t1 + 1, with t1 = -1 where the text ends
    for i in range(len(query)):
        t0 = query[i]
        if t0 < 0 or t0 >= vocab:
            continue  # a token the book never has: no match at all
        if depth == 1:
            lo, hi, best = buckets[t0], buckets[t0 + 1], 1
        else:
            if buckets[t0 * width] == buckets[(t0 + 1) * width]:
                continue
            t1 = query[i + 1] if i + 1 < len(query) else -1
            if t1 < 0 or t1 >= vocab:
                out[i] = 1
                continue
            key = t0 * width + t1 + 1
            lo, hi, best = buckets[key], buckets[key + 1], 2
        if lo == hi:
            out[i] = best - 1  # the prefix but its last token occurs
            continue
        while lo < hi:  # the first suffix in the bucket that does not sort before query[i:]
            mid = (lo + hi) // 2
            k, order = _common_prefix(text, suffixes[mid], query, i)
            best = max(best, k)
            if order == 0:
                break  # full match: nothing longer is possible
            if order > 0:
                lo = mid + 1
            else:
                hi = mid
        out[i] = best
    return out


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
        matched = _matching_statistics(self.text, self.suffixes, query, self.buckets, self.vocab, self.depth)
        windows = len(query) - NGRAM + 1
        new_share = float((matched[:windows] < NGRAM).mean()) if windows > 0 else 1.0
        return Novelty(int(matched.max()), new_share)
