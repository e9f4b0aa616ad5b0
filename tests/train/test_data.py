"""Vectorisation: the book's counts, the held-out split, and the training windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.tokenizers import UNKNOWN_TOKEN
from train.corpus import Corpus, CorpusError, load_corpus
from train.data import book_sequence_count, fast_dataset, heldout_windows, split_corpus
from train.recipes import BOOK, FAST, TrainConfig


def test_book_counts_on_the_full_file(nietzsche_path: Path) -> None:
    text = load_corpus(nietzsche_path).text.lower()
    assert len(text) == 600_893
    assert len(set(text)) == 57
    assert book_sequence_count(len(text), 60, 3) == 200_278


def test_split_never_overlaps_and_vocab_ignores_heldout(tiny_text: str) -> None:
    text = tiny_text + "QZ! unseen tail"  # characters only in the held-out tail
    corpus = Corpus("t", text, "0" * 64, "memory")
    config = TrainConfig(window=20, heldout_fraction=0.1)
    split = split_corpus(corpus, config)
    assert len(split.train) + len(split.heldout) == len(text)
    assert len(split.heldout) == len(text) - int(len(text) * 0.9)
    assert "z" not in split.tokenizer.tokens and split.tokenizer.tokens[0] == UNKNOWN_TOKEN
    contexts, targets = heldout_windows(split.heldout, 20)
    # Every scored context and target lies inside the held-out ids.
    assert contexts.shape == (len(split.heldout) - 20, 20)
    np.testing.assert_array_equal(contexts[5], split.heldout[5:25])
    assert targets[5] == split.heldout[25]


def test_too_small_corpus_says_how_much_is_needed() -> None:
    corpus = Corpus("t", "a short text" * 10, "0" * 64, "memory")
    with pytest.raises(
        CorpusError, match=r"corpus too small: 120 characters; .* needs at least [\d,]+ characters"
    ):
        split_corpus(corpus, FAST)


def test_fast_windows_label_every_next_token(tiny_text: str) -> None:
    corpus = Corpus("t", tiny_text, "0" * 64, "memory")
    config = FAST.with_overrides(window=20, batch=4)
    split = split_corpus(corpus, config)
    x, y = next(iter(fast_dataset(split.train, config, split.tokenizer.vocab_size)))
    assert x.shape == (4, 20) and y.shape == (4, 20)
    np.testing.assert_array_equal(x.numpy()[:, 1:], y.numpy()[:, :-1])


def test_book_recipe_is_the_books() -> None:
    assert (BOOK.window, BOOK.step, BOOK.hidden, BOOK.batch) == (60, 3, 128, 128)
    assert (BOOK.optimizer, BOOK.learning_rate, BOOK.input) == ("rmsprop", 0.01, "onehot")


def test_seeds_from_chinese_verse_are_one_couplet_of_one_poem() -> None:
    from core.tokenizers import CharTokenizer
    from train.data import seed_snippets

    poems = (
        "秦川雄帝宅，函谷壮皇居。绮殿千寻起，离宫百雉余。\n岩廊罢机务，崇文聊驻辇。玉匣启龙图，金绳披凤篆。\n"
        * 30
    )
    seeds = seed_snippets(poems, CharTokenizer.fit(poems), count=8)
    assert seeds and set(seeds) <= {
        "岩廊罢机务，崇文聊驻辇。",
        "玉匣启龙图，金绳披凤篆。",
        "秦川雄帝宅，函谷壮皇居。",
        "绮殿千寻起，离宫百雉余。",
    }


def test_seeds_from_a_play_are_a_speaker_and_the_first_line_of_the_speech() -> None:
    from core.tokenizers import CharTokenizer
    from train.data import seed_snippets

    play = "".join(
        f"\n\n{name}:\nThou speak'st of {i} things, my lord, and more.\nAnd yet no more.\n"
        for i, name in enumerate(["ROMEO", "JULIET", "First Citizen"] * 80)
    )
    seeds = seed_snippets(play, CharTokenizer.fit(play, lowercase=False), count=10)
    assert len(seeds) == 10 and all(
        s.split("\n")[0] in ("ROMEO:", "JULIET:", "First Citizen:") for s in seeds
    )
    assert all(s.count("\n") == 1 and s.endswith("and more.") for s in seeds)
