"""Ending a character model's sample on a word, not in the middle of one ("is a d").

A char model is asked for a few characters more than the user's length; the text is then cut
at the first word or sentence end at or after that length, or, when none comes within the
margin, back at the last space before it.
"""

from __future__ import annotations

WORD_END_MARGIN = 20  # extra characters generated to find the end of the last word
_SENTENCE_END = frozenset(".!?;:,)]}\"'…。！？；：，、」』")


def _ends_here(text: str, i: int) -> bool:
    """Whether position i (a cut before text[i]) falls between words or after punctuation."""
    return text[i].isspace() or text[i - 1] in _SENTENCE_END


def end_on_word(text: str, length: int, margin: int = WORD_END_MARGIN) -> str:
    """The first `length` characters of `text` extended to the end of the word they stop in
    (at most `margin` more), else cut back to the last space; trailing spaces dropped.

    `text` is what was generated: up to `length + margin` characters. A text with no space at
    all (one long "word") keeps exactly `length` characters.
    """
    if len(text) <= length:
        return text.rstrip()
    for i in range(max(length, 1), min(len(text), length + margin + 1)):
        if _ends_here(text, i):
            return text[:i].rstrip()
    head = text[:length]
    space = max(head.rfind(" "), head.rfind("\n"))
    return head[:space].rstrip() if space > 0 else head
