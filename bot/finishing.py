"""Finishing: every text the bot shows is generated a little long and ended by one rule.

`asked` is how many tokens to generate for a text of `length`; `finish` cuts a generated sample
at the end its model level calls for (core/word_end.py: a word for char models, a sentence for
word models). Samples, /compare parts, duel arms, inline results and both game endings all go
through here, so none is cut mid-word and a game's two endings end alike; `keep_whole` draws
again each of them that a run of blanks cut short, so none is shown much shorter than asked.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from core.generator import Request, Sample
from core.limits import MAX_LENGTH
from core.word_end import ends_by_rule, kept, margin

if TYPE_CHECKING:  # bot.admission imports this module (through bot.delivery)
    from bot.admission import Ticket

# Draws of one text, the first included, until its ending is whole (`is_whole`); the last draw
# is kept regardless (a seed that always ends blank must still get an answer).
WHOLE_TRIES = 3


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


def fits(pieces: Sequence[str], length: int, level: str, *, ended: bool = False) -> bool:
    """Whether finished pieces may be shown: whole, and with `ended` (a game's two endings, side
    by side) ending by their level's rule, so that neither cut tells which one the model wrote."""
    return is_whole(pieces, length, level) and (not ended or ends_by_rule(pieces, level))


@dataclass(frozen=True)
class Kept:
    """A finished sample and the rng seed that drew it (stored: the text can be drawn again)."""

    sample: Sample
    rng: int


async def keep_whole(
    ticket: Ticket,
    requests: Sequence[tuple[Request, str]],
    finished: Sequence[Sample],
    length: int,
    levels: Sequence[str],
    *,
    versions: Sequence[str | None] | None = None,
    ended: bool = False,
) -> list[Kept] | None:
    """Each finished sample with its rng seed, drawn again (a fresh rng seed, the same request
    otherwise) while its text is not whole (with `ended`, also while it does not end by its
    level's rule: a game's ending), up to WHOLE_TRIES draws in all; the last is kept.

    `requests` are the (request, model) pairs that made `finished` (each carrying an int rng
    seed), `levels` each one's model level, `versions` the versions they were drawn by (a
    challenger duel). Redraws of one round go to the queue together. None when the queue
    refused a redraw (the refusal is then in `ticket.refusal`, said as any other)."""
    if not len(requests) == len(finished) == len(levels):
        raise ValueError("one request and one level per finished sample")
    chosen = list(versions) if versions is not None else [None] * len(requests)
    kept_now: list[Kept] = []
    for (request, _), sample in zip(requests, finished, strict=True):
        if isinstance(request.rng, bool) or not isinstance(request.rng, int):
            raise TypeError("a stored draw needs an int rng seed to be drawn again")
        kept_now.append(Kept(sample, request.rng))
    for _ in range(WHOLE_TRIES - 1):
        cut = [i for i, k in enumerate(kept_now) if not fits(k.sample.pieces, length, levels[i], ended=ended)]
        if not cut:
            break
        rngs = {i: secrets.randbits(63) for i in cut}
        again = [(replace(requests[i][0], rng=rngs[i]), requests[i][1]) for i in cut]
        made = await ticket.generate(again, versions=[chosen[i] for i in cut])
        if made is None:
            return None
        for i, sample in zip(cut, made, strict=True):
            kept_now[i] = Kept(finish(sample, length, levels[i]), rngs[i])
    return kept_now
