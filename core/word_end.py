"""Where a shown text ends: on a word (char models) or a sentence (word models), never mid-way.

Every text the bot shows (a sample, a /compare part, a duel arm, an inline result, both endings
of a game) is generated a little longer than asked and then cut here, by one rule per model
level, so no feature ends "…is a d" and, in a game, the cut never tells the book's ending from
the model's.

- char: the first word or sentence end at or after the length (at most WORD_END_MARGIN more),
  else back to the last one before it (at most the margin back), else exactly the length.
- word: the first sentence end at or after the length (at most SENTENCE_END_MARGIN words
  more), else back to the last one in the second half, else exactly the length.
"""

from __future__ import annotations

from collections.abc import Sequence

WORD_END_MARGIN = 20  # extra characters generated to find the end of the last word
SENTENCE_END_MARGIN = 12  # extra words generated to find the end of the last sentence
_SENTENCE_END = frozenset(".!?;:,)]}\"'…。！？；：，、」』")
_FULL_STOP = frozenset(".!?…。！？")
_CLOSING = frozenset("\"'”’」』)）]")


def margin(level: str) -> int:
    """Tokens to generate beyond the length, so that an ending can be found."""
    return WORD_END_MARGIN if level == "char" else SENTENCE_END_MARGIN


_CJK_COMMAS = frozenset("，、")


def _ends_here(text: str, i: int) -> bool:
    """Whether position i (a cut before text[i]) falls between words or after punctuation. Not
    after a Chinese comma: Chinese has no spaces, so its punctuation is where a char model's
    text may end, and a poem cut after "，" stops in the middle of a couplet."""
    return text[i].isspace() or (text[i - 1] in _SENTENCE_END and text[i - 1] not in _CJK_COMMAS)


def end_on_word(text: str, length: int, margin: int = WORD_END_MARGIN) -> str:
    """The first `length` characters of `text` extended to the end of the word they stop in
    (at most `margin` more), else cut back to the last word end at most `margin` before the
    length, else exactly `length` characters; trailing spaces dropped.

    `text` is what was generated: up to `length + margin` characters.
    """
    if len(text) <= length:
        return text.rstrip()
    for i in range(max(length, 1), min(len(text), length + margin + 1)):
        if _ends_here(text, i):
            return text[:i].rstrip()
    for i in range(length - 1, max(length - margin, 0) - 1, -1):
        if i > 0 and _ends_here(text, i):
            return text[:i].rstrip()
    return text[:length]


def _ends_sentence(pieces: Sequence[str], i: int) -> bool:
    """Whether a cut after pieces[i] ends a sentence (a closing quote may follow the stop)."""
    piece = pieces[i].rstrip()
    if not piece:
        return False
    if piece[-1] in _FULL_STOP:
        return i + 1 >= len(pieces) or pieces[i + 1].strip()[:1] not in _CLOSING
    return piece[-1] in _CLOSING and len(piece) == 1 and i > 0 and pieces[i - 1].rstrip()[-1:] in _FULL_STOP


def end_on_sentence(pieces: Sequence[str], length: int, margin: int = SENTENCE_END_MARGIN) -> int:
    """How many of a word model's `pieces` to keep: through the first sentence end at or after
    `length` (at most `margin` more), else the last one in the second half, else `length`."""
    if len(pieces) <= length:
        return len(pieces)
    for i in range(max(length - 1, 0), min(len(pieces), length + margin)):
        if _ends_sentence(pieces, i):
            return i + 1
    for i in range(length - 2, length // 2 - 1, -1):
        if _ends_sentence(pieces, i):
            return i + 1
    return length


def ends_by_rule(pieces: Sequence[str], level: str) -> bool:
    """Whether a finished text ends where its level's rule looks for an end, rather than where
    the rule gave up and cut at the length: a word model's text at a sentence end. (A char
    model's rule finds a word end within its margin on either side of almost any length.) In
    a game, an ending cut at the length beside one ending a sentence tells which is which."""
    if level == "char":
        return True
    return bool(pieces) and _ends_sentence(pieces, len(pieces) - 1)


def kept(pieces: Sequence[str], length: int, level: str) -> int:
    """How many generated pieces (tokens) a shown text of `length` keeps, for its model level."""
    if level == "char":
        return len(end_on_word("".join(pieces), length))
    return end_on_sentence(pieces, length)
