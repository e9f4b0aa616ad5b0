from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.word_end import WORD_END_MARGIN, end_on_sentence, end_on_word, ends_by_rule


def test_a_word_cut_by_the_length_is_finished() -> None:
    assert end_on_word("this is a dog that barks", 11) == "this is a dog"
    assert end_on_word("this is a dog. It barks", 12) == "this is a dog."


def test_a_cut_already_between_words_stays() -> None:
    assert end_on_word("this is a dog that", 13) == "this is a dog"


def test_no_end_within_the_margin_cuts_back_to_the_last_space() -> None:
    long_word = "x" * (WORD_END_MARGIN + 10)
    assert end_on_word(f"this is {long_word} y", 12) == "this is"
    assert end_on_word("y" * 60, 40) == "y" * 40  # no space at all: exactly the length


def test_the_cut_back_goes_at_most_the_margin_back() -> None:
    # A word end 30 characters before the length is too far back: the sample keeps its length.
    text = "ab " + "y" * 80
    assert end_on_word(text, 33, margin=20) == text[:33]
    assert end_on_word(text, 22, margin=20) == "ab"


@given(st.text(alphabet="ab .\n", max_size=80), st.integers(1, 50))
def test_never_longer_than_length_plus_margin_and_a_prefix(text: str, length: int) -> None:
    cut = end_on_word(text, length)
    assert text.startswith(cut) and len(cut) <= length + WORD_END_MARGIN
    # Never shorter than the margin allows, bar the spaces dropped at the cut.
    floor = min(length, len(text)) - WORD_END_MARGIN
    assert len(cut) >= floor or not text[len(cut) : floor].strip()
    if len(text) > length and cut and len(cut) < len(text.rstrip()):
        rest = text[len(cut) :]
        assert rest[:1].isspace() or cut[-1] in ".\n" or len(cut) == length


def test_a_word_text_ends_by_the_rule_only_at_a_sentence_end() -> None:
    """Newcomer pass, 2026-12-07: in a game the book's ending stopped on "。" and the model's
    mid-sentence ("…他又来了，我"): the rule had found no sentence end and cut at the length."""
    prose = ["宝玉", "听", "了", "，", "忙", "笑道", "：", "“", "好", "。", "”"] * 5
    cut = prose[: end_on_sentence(prose, 30)]
    assert ends_by_rule(cut, "word") and cut[-1] in ("。", "”")
    no_stop = ["他", "又", "来", "了", "，", "我"] * 10  # commas only: the rule cuts at the length
    assert end_on_sentence(no_stop, 30) == 30 and not ends_by_rule(no_stop[:30], "word")
    assert not ends_by_rule([], "word") and ends_by_rule(list("any text"), "char")


def test_a_poem_ends_at_the_end_of_a_line_not_after_its_comma() -> None:
    """Newcomer pass, 2026-12-07: a tang-char sample ended "…应照碧峰前。\n不得多从此，", half a
    couplet. A Chinese comma is no end for a char model's text; a full stop or a line end is."""
    poem = "春眠不觉晓，处处闻啼鸟。\n夜来风雨声，花落知多少。\n" * 4
    cut = end_on_word(poem, 18)  # 18 lands in the second line's first half
    assert cut == "春眠不觉晓，处处闻啼鸟。\n夜来风雨声，花落知多少。", cut
    assert end_on_word("the free spirit, who wills", 16) == "the free spirit,"  # English: as before
