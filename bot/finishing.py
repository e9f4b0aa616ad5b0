"""Finishing: every text the bot shows is generated a little long and ended by one rule.

`asked` is how many tokens to generate for a text of `length`; `finish` cuts a generated sample
at the end its model level calls for (core/word_end.py: a word for char models, a sentence for
word models). Samples, /compare parts, duel arms, inline results and both game endings all go
through here, so none is cut mid-word and a game's two endings end alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from core.generator import Sample
from core.limits import MAX_LENGTH
from core.word_end import kept, margin

# The length of each text shown side by side in one message (/compare's four parts, a duel's
# two arms), per model level: they must fit in one message together.
COMPARE_LENGTH = {"char": 200, "word": 50}


def asked(length: int, level: str) -> int:
    """Tokens to generate for a shown text of `length`: the length plus the level's margin."""
    return min(length + margin(level), MAX_LENGTH)


def finished_pieces(pieces: Sequence[str], length: int, level: str) -> list[str]:
    """Generated (or book) tokens, ended by the level's rule near `length`."""
    return list(pieces[: kept(pieces, length, level)])


def finished_text(pieces: Sequence[str], length: int, level: str) -> str:
    """The text of `finished_pieces`."""
    return "".join(finished_pieces(pieces, length, level)).rstrip()


def shown_length(sample: Sample, level: str) -> int:
    """The count shown under a finished sample: its characters (char models) or its words (word
    models, counted by its token ids: segmenting the text again may find another count)."""
    return len(sample.text) if level == "char" else len(sample.token_ids)


def finish(sample: Sample, length: int, level: str) -> Sample:
    """The sample ended by its level's rule; its request keeps the length the user asked for,
    its token ids and pieces are those of the text that is shown."""
    n = kept(sample.pieces, length, level)
    return replace(
        sample,
        request=replace(sample.request, length=length),
        text="".join(sample.pieces[:n]).rstrip(),
        token_ids=sample.token_ids[:n],
        pieces=sample.pieces[:n],
    )


def is_whole(pieces: Sequence[str], length: int, level: str) -> bool:
    """Whether finished pieces make a full-length text rather than one that a run of blanks cut
    short: after an indented verse line a model may write nothing but spaces (1 in ~600 game
    endings at T=0.5), which would show an empty ending."""
    if level == "char":
        return len("".join(pieces).rstrip()) >= length - margin(level)
    return sum(1 for piece in pieces if piece.strip()) >= length // 2
