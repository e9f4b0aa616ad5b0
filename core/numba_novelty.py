"""The novelty index's search in numba: where the C kernel (core/qsearch.c) was not built.

Imported only then (core/novelty.py): numba and LLVM cost ~110 MB of resident memory. The same
integers as the C search.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]


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
