"""Tokenizers: round trips, unknown tokens, JSON save/load, jieba segmentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.tokenizers import UNKNOWN_ID, UNKNOWN_TOKEN, CharTokenizer, Tokenizer, WordTokenizer


def test_char_round_trip_lowercases_like_the_book() -> None:
    tok = CharTokenizer.fit("Hello, World!\n")
    assert tok.tokens[0] == UNKNOWN_TOKEN
    assert tok.decode(tok.encode("Hello world")) == "hello world"
    assert tok.vocab_size == len(set("hello, world!\n")) + 1


def test_char_tokenizer_can_keep_case_and_emoji() -> None:
    text = "Ünïcode 🙂 and 👩‍👩‍👧 ZWJ"
    tok = CharTokenizer.fit(text, lowercase=False)
    assert tok.decode(tok.encode(text)) == text


def test_unknown_characters_map_to_zero_and_are_counted() -> None:
    tok = CharTokenizer.fit("abc ")
    encoded = tok.encode_counted("abz 🙂c")
    assert encoded.unknown == 2
    assert encoded.ids[2] == UNKNOWN_ID and encoded.ids[4] == UNKNOWN_ID
    assert tok.decode(encoded.ids) == f"ab{UNKNOWN_TOKEN} {UNKNOWN_TOKEN}c"


def test_json_save_load_round_trip(tmp_path: Path) -> None:
    tok = CharTokenizer.fit("The will to truth", lowercase=False)
    tok.save(tmp_path / "vocab.json")
    loaded = Tokenizer.load(tmp_path / "vocab.json")
    assert isinstance(loaded, CharTokenizer)
    assert loaded.tokens == tok.tokens and loaded.lowercase is False
    assert loaded.encode("will") == tok.encode("will")


def test_word_tokenizer_segments_chinese_and_keeps_punctuation() -> None:
    text = "宝玉笑道：“我送妹妹一方玉。”黛玉听了，便问道：“你从何处来？”"
    tok = WordTokenizer.fit(text)
    pieces = tok.split(text)
    assert "宝玉" in pieces and "黛玉" in pieces
    for mark in "：“”，？。":
        assert mark in pieces, mark  # every punctuation mark is a token of its own
    assert tok.decode(tok.encode(text)) == text


def test_word_tokenizer_unknown_words_and_cap(tmp_path: Path) -> None:
    text = "我们 我们 我们 他们 他们 你们。"
    tok = WordTokenizer.fit(text, max_vocab=3)
    assert tok.vocab_size == 3
    encoded = tok.encode_counted("我们和朋友们")
    assert encoded.unknown >= 1 and encoded.ids[0] != UNKNOWN_ID
    tok.save(tmp_path / "v.json")
    assert Tokenizer.load(tmp_path / "v.json").tokens == tok.tokens


def test_english_to_word_model_and_chinese_to_char_model_never_raise() -> None:
    char = CharTokenizer.fit("abc")
    word = WordTokenizer.fit("红楼梦")
    assert char.encode_counted("红楼梦").unknown == 3
    assert word.encode_counted("hello world").unknown >= 2


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "char", "tokens": ["a", "b"]},  # no unknown token first
        {"kind": "char", "tokens": [UNKNOWN_TOKEN, "a", "a"]},
        {"kind": "bpe", "tokens": [UNKNOWN_TOKEN]},
        {"kind": "char", "tokens": "abc"},
    ],
)
def test_bad_vocabularies_are_rejected(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Tokenizer.from_dict(data)


def test_rare_words_fall_back_to_their_characters() -> None:
    tok = WordTokenizer([UNKNOWN_TOKEN, "宝", "钗", "笑", "道", "。"])
    encoded = tok.encode_counted("宝钗笑道。")
    assert tok.decode(encoded.ids) == "宝钗笑道。" and encoded.unknown == 0
    assert tok.encode_counted("龙").unknown == 1


def test_fit_counts_the_characters_of_words_left_out() -> None:
    # Many different rare words share one character: it earns a place in a small vocabulary.
    text = "。".join(["张三", "张飞", "张良", "张角", "张衡", "张骞"]) + "。" + "好" * 3
    tok = WordTokenizer.fit(text, max_vocab=4)
    assert "张" in tok.tokens
    assert tok.encode_counted("张辽").unknown == 1  # 张 known, 辽 not


def test_char_vocabulary_cap_keeps_the_most_frequent_characters() -> None:
    text = "春春春花花月，。\n夜"
    capped = CharTokenizer.fit(text, max_vocab=4)
    # The three most frequent (a tie among the singles goes to the lowest code point, the
    # newline), listed in code point order after the unknown token.
    assert capped.tokens == (UNKNOWN_TOKEN, "\n", "春", "花")
    assert capped.encode("夜") == [0]
    # A cap the text does not reach changes nothing: the English vocabularies stay as they were.
    assert CharTokenizer.fit(text, max_vocab=10_000).tokens == CharTokenizer.fit(text).tokens
    with pytest.raises(ValueError, match="at least 2"):
        CharTokenizer.fit(text, max_vocab=1)
