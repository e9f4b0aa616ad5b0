"""The novelty index: matching statistics equal a brute-force search, on both shipped corpora too."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core import novelty
from core.novelty import NGRAM, Novelty, NoveltyIndex


def brute_force(book: list[int], sample: list[int]) -> Novelty:
    text = ",".join(map(str, book)) + ","

    def occurs(run: list[int]) -> bool:
        return ("," + ",".join(map(str, run)) + ",") in "," + text

    longest = 0
    for i in range(len(sample)):
        for j in range(len(sample), i, -1):
            if j - i <= longest:
                break
            if occurs(sample[i:j]):
                longest = j - i
                break
    grams = [sample[i : i + NGRAM] for i in range(len(sample) - NGRAM + 1)]
    new = sum(not occurs(g) for g in grams) / len(grams) if grams else 1.0
    return Novelty(longest, new)


@settings(max_examples=200, deadline=None)
@given(
    book=st.lists(st.integers(0, 3), min_size=1, max_size=80),
    sample=st.lists(st.integers(0, 4), min_size=0, max_size=40),
)
def test_index_agrees_with_brute_force(book: list[int], sample: list[int]) -> None:
    index = NoveltyIndex(book)
    assert index.depth == 2  # a small vocabulary: two-token buckets
    assert index.check(sample) == brute_force(book, sample)


@settings(max_examples=100, deadline=None)
@given(
    book=st.lists(st.integers(0, 3), min_size=1, max_size=80),
    sample=st.lists(st.integers(0, 4), min_size=0, max_size=40),
)
def test_one_token_buckets_agree_with_brute_force_too(book: list[int], sample: list[int]) -> None:
    # What a word book's large vocabulary gets (its two-token table would be too big).
    saved = novelty.MAX_BUCKETS
    novelty.MAX_BUCKETS = 0
    try:
        index = NoveltyIndex(book)
    finally:
        novelty.MAX_BUCKETS = saved
    assert index.depth == 1
    assert index.check(sample) == brute_force(book, sample)


def test_a_copied_passage_and_a_new_one() -> None:
    rng = np.random.default_rng(0)
    book = rng.integers(0, 50, size=5000)
    copied = NoveltyIndex(book).check(np.concatenate([[99, 98], book[1000:1043], [97]]))
    assert copied.longest_copied == 43
    assert 0 < copied.new_ngram_share < 0.3
    fresh = NoveltyIndex(book).check(rng.integers(50, 60, size=100))
    assert fresh == Novelty(0, 1.0)


def test_shipped_corpus_quotes_are_found(nietzsche_path: object) -> None:
    from pathlib import Path

    text = Path(str(nietzsche_path)).read_text(encoding="utf-8")
    index = NoveltyIndex(np.frombuffer(text.encode("utf-32-le"), dtype=np.int32))
    quote = "supposing that truth is a woman--what then?"
    found = index.check(np.frombuffer((quote + "\u263a").encode("utf-32-le"), dtype=np.int32))
    assert found.longest_copied == len(quote)


@settings(max_examples=100, deadline=None)
@given(
    book=st.lists(st.integers(0, 6), min_size=1, max_size=300),
    sample=st.lists(st.integers(-1, 8), min_size=0, max_size=60),
    depth=st.sampled_from([1, 2]),
)
def test_the_c_search_equals_the_numba_one(book: list[int], sample: list[int], depth: int) -> None:
    from core.lstm_step import KERNEL
    from core.numba_novelty import _matching_statistics

    if not KERNEL.startswith("C"):
        return  # the numba search is the one served: nothing to compare
    saved = novelty.MAX_BUCKETS
    novelty.MAX_BUCKETS = 1 << 20 if depth == 2 else 0
    try:
        index = NoveltyIndex(book)
    finally:
        novelty.MAX_BUCKETS = saved
    query = np.array(sample, dtype=np.int32)
    args = (index.text, index.suffixes, query, index.buckets, index.vocab, index.depth)
    np.testing.assert_array_equal(novelty._search(*args), _matching_statistics(*args))
