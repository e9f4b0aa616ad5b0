"""Ending a character model's sample on a word, not in the middle of one ("is a d").

A char model is asked for a few characters more than the user's length; the text is then cut
at the first word or sentence end at or after that length, or, when none comes within the
margin, back at the last one before it, but never more than the margin back: a sample stays
within `length ± margin` characters, whatever the model writes.
"""

from __future__ import annotations

WORD_END_MARGIN = 20  # extra characters generated to find the end of the last word
_SENTENCE_END = frozenset(".!?;:,)]}\"'…。！？；：，、」』")


def _ends_here(text: str, i: int) -> bool:
    """Whether position i (a cut before text[i]) falls between words or after punctuation."""
    return text[i].isspace() or text[i - 1] in _SENTENCE_END


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
