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
def _matching_statistics(text: I32, suffixes: I64, query: I32) -> I64:
    """For each i, the length of the longest prefix of query[i:] that occurs in text."""
    out = np.zeros(len(query), dtype=np.int64)
    for i in range(len(query)):
        lo, hi = 0, len(suffixes)  # first suffix that does not sort before query[i:]
        best = 0
        while lo < hi:
            mid = (lo + hi) // 2
            k, order = _common_prefix(text, suffixes[mid], query, i)
            best = max(best, k)
            if order == 0:
                lo = hi = mid  # full match: nothing longer is possible
                break
            if order > 0:
                lo = mid + 1
            else:
                hi = mid
        out[i] = best
    return out


class NoveltyIndex:
    """A suffix array over a book's token ids, to measure how much of a sample is copied."""

    def __init__(self, book_ids: Sequence[int] | npt.NDArray[np.integer]) -> None:
        self.text: I32 = np.ascontiguousarray(book_ids, dtype=np.int32)
        if len(self.text) == 0:
            raise ValueError("the novelty index needs a non-empty book")
        self.suffixes: I64 = np.asarray(divsufsort(self.text), dtype=np.int64)

    def check(self, sample_ids: Sequence[int] | npt.NDArray[np.integer]) -> Novelty:
        """The longest run of the sample found in the book, and the share of its 8-grams that are new."""
        query = np.ascontiguousarray(sample_ids, dtype=np.int32)
        if len(query) == 0:
            return Novelty(0, 1.0)
        matched = _matching_statistics(self.text, self.suffixes, query)
        windows = len(query) - NGRAM + 1
        new_share = float((matched[:windows] < NGRAM).mean()) if windows > 0 else 1.0
        return Novelty(int(matched.max()), new_share)
