"""Finishing: a text cut short by a run of blanks is not whole (a game would show it empty)."""

from __future__ import annotations

from bot.finishing import asked, finish, is_whole
from core.generator import Request, Sample
from core.word_end import kept


def _sample(text: str, length: int) -> Sample:
    pieces = list(text)
    return Sample(Request("seed", length=length), text, list(range(len(pieces))), 0, 1, pieces=pieces)


def test_a_char_ending_of_spaces_is_not_whole_and_a_full_one_is() -> None:
    # What the shipped Nietzsche model wrote 3 times in 1,920 game endings at T=0.5.
    blank = finish(_sample("\n" + " " * (asked(120, "char") - 1), asked(120, "char")), 120, "char")
    assert blank.text == "" and not is_whole(blank.pieces, 120, "char")
    prose = ("the free spirit knows what he wills, and why he wills it; " * 3)[: asked(120, "char")]
    full = finish(_sample(prose, asked(120, "char")), 120, "char")
    assert 100 <= len(full.text) <= 140 and is_whole(full.pieces, 120, "char")


def test_a_char_ending_that_goes_blank_half_way_is_not_whole() -> None:
    text = ("and so on " * 6) + " " * 80
    pieces = list(text)[: kept(list(text), 120, "char")]
    assert not is_whole(pieces, 120, "char")


def test_word_endings_need_half_their_words() -> None:
    words = ["他", "笑", "道", "。"] * 10
    assert is_whole(words[:30], 30, "word")
    assert not is_whole(["他", "。"] + [" "] * 28, 30, "word")
