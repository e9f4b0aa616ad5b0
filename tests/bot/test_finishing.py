"""Finishing: a text cut short by a run of blanks is not whole (a game would show it empty),
and keep_whole draws such a text again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import cast

from telegram import Bot

from bot.admission import Ticket
from bot.db.database import Database
from bot.finishing import WHOLE_TRIES, asked, finish, finished_text, fits, is_whole, keep_whole
from bot.generation import GenerationService, QueueFullError
from bot.services import Services
from bot.settings import Settings
from bot.user_limits import UserLimits
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


# -- keep_whole: every shown text is drawn again while a run of blanks cut it short ----------


class _Generation:
    """The generation service's `generate` as a Ticket calls it: a blank ending (what the char
    model wrote after an indented verse line) for the rng seeds in `blank`, prose otherwise;
    every request it is asked for is kept in `asked`."""

    def __init__(self, blank: set[int] | None = None) -> None:
        self.blank = blank  # None: every draw is blank
        self.full = False  # the queue says it is full
        self.asked: list[tuple[Request, str | None, str | None]] = []
        self.outstanding = 0

    async def generate(
        self, request: Request, *, model: str | None = None, version: str | None = None
    ) -> Sample:
        if self.full:
            raise QueueFullError("too many requests are waiting")
        self.asked.append((request, model, version))
        assert isinstance(request.rng, int)
        blank = self.blank is None or request.rng in self.blank
        text = "\n" + " " * (request.length - 1) if blank else (PROSE * 10)[: request.length]
        return replace(_sample(text, request.length), request=request)


PROSE = "the free spirit knows what he wills, and why he wills it; "


@asynccontextmanager
async def _ticket(generation: _Generation, tmp_path: Path) -> AsyncIterator[Ticket]:
    services = Services(
        settings=Settings(),
        db=Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}"),
        generation=cast(GenerationService, generation),
        limits=UserLimits(100),
    )
    try:
        yield Ticket(services, Bot("1:test"), user_id=7, lang="en", chat_id=None, granted=True)
    finally:
        await services.db.dispose()


async def _drawn(
    generation: _Generation, rngs: list[int], versions: list[str | None] | None = None
) -> tuple[list[tuple[Request, str]], list[Sample]]:
    """What a feature has before keep_whole: its requests and their finished samples, made by
    the same generation (outside the ticket: only the redraws are counted and charged)."""
    requests = [(Request("seed", length=asked(120, "char"), rng=rng), "m") for rng in rngs]
    chosen = versions or [None] * len(rngs)
    made = [
        await generation.generate(r, model=m, version=v) for (r, m), v in zip(requests, chosen, strict=True)
    ]
    generation.asked.clear()
    return requests, [finish(sample, 120, "char") for sample in made]


async def test_keep_whole_draws_a_blank_text_again_and_keeps_the_redraws_rng(tmp_path: Path) -> None:
    generation = _Generation(blank={11})
    async with _ticket(generation, tmp_path) as ticket:
        requests, finished = await _drawn(generation, [11, 22], versions=["v1", "v2"])
        assert not is_whole(finished[0].pieces, 120, "char") and is_whole(finished[1].pieces, 120, "char")
        kept = await keep_whole(ticket, requests, finished, 120, ["char", "char"], versions=["v1", "v2"])
        assert kept is not None
        # The blank one was drawn again once, alone, by its own version, with a fresh rng seed
        # (the same request otherwise); what is kept is that draw, finished, and its rng seed.
        ((again, model, version),) = generation.asked
        assert (model, version) == ("m", "v1") and again.rng not in (11, 22)
        assert again == replace(requests[0][0], rng=again.rng)
        assert kept[0].rng == again.rng and is_whole(kept[0].sample.pieces, 120, "char")
        assert kept[0].sample.text == finished_text(list((PROSE * 10)[: asked(120, "char")]), 120, "char")
        assert kept[0].sample.request.length == 120  # finished: the length the user asked for
        # The whole one is kept untouched, with its own rng seed.
        assert kept[1].sample is finished[1] and kept[1].rng == 22
        assert ticket.charged == 1  # the redraw is work done: charged like any generation


async def test_keep_whole_draws_nothing_when_every_text_is_whole(tmp_path: Path) -> None:
    generation = _Generation(blank=set())
    async with _ticket(generation, tmp_path) as ticket:
        requests, finished = await _drawn(generation, [1, 2, 3])
        kept = await keep_whole(ticket, requests, finished, 120, ["char"] * 3)
        assert kept is not None
        assert [k.sample for k in kept] == finished and all(
            k.sample is f for k, f in zip(kept, finished, strict=True)
        )
        assert [k.rng for k in kept] == [1, 2, 3]
        assert generation.asked == [] and ticket.charged == 0


async def test_keep_whole_keeps_the_last_draw_when_every_try_is_blank(tmp_path: Path) -> None:
    generation = _Generation()  # every draw blank
    async with _ticket(generation, tmp_path) as ticket:
        requests, finished = await _drawn(generation, [5])
        kept = await keep_whole(ticket, requests, finished, 120, ["char"])
        assert kept is not None
        # WHOLE_TRIES draws in all, the first one included; the last is kept, not whole.
        assert len(generation.asked) == WHOLE_TRIES - 1 and ticket.charged == WHOLE_TRIES - 1
        last = generation.asked[-1][0]
        assert kept[0].rng == last.rng and kept[0].rng != 5
        assert kept[0].sample.request.rng == last.rng and kept[0].sample.text == ""


async def test_keep_whole_says_a_refused_redraw_like_any_refusal(tmp_path: Path) -> None:
    generation = _Generation(blank={5})
    async with _ticket(generation, tmp_path) as ticket:
        requests, finished = await _drawn(generation, [5])
        generation.full = True
        assert await keep_whole(ticket, requests, finished, 120, ["char"]) is None
        assert ticket.refusal is not None and ticket.queue_refused and ticket.charged == 0


async def test_a_game_ending_cut_at_the_length_is_drawn_again(tmp_path: Path) -> None:
    """A game's endings must also end by their level's rule (`ended`): a word model's ending cut
    at the length, not at a sentence end, beside the book's that ends one, gave the game away."""
    no_stop, stops = ["他", "又", "来", "了", "，", "我"] * 10, ["他", "笑", "道", "。"] * 15

    class Words(_Generation):
        async def generate(
            self, request: Request, *, model: str | None = None, version: str | None = None
        ) -> Sample:
            self.asked.append((request, model, version))
            pieces = (no_stop if request.rng == 1 else stops)[: request.length]
            return Sample(request, "".join(pieces), list(range(len(pieces))), 0, 1, pieces=pieces)

    generation = Words()
    async with _ticket(generation, tmp_path) as ticket:
        request = Request("seed", length=asked(30, "word"), rng=1)
        first = finish(await generation.generate(request), 30, "word")
        generation.asked.clear()
        assert is_whole(first.pieces, 30, "word") and not fits(first.pieces, 30, "word", ended=True)
        unchanged = await keep_whole(ticket, [(request, "m")], [first], 30, ["word"])
        assert unchanged is not None and unchanged[0].sample is first and not generation.asked
        kept = await keep_whole(ticket, [(request, "m")], [first], 30, ["word"], ended=True)
        assert kept is not None and len(generation.asked) == 1 and kept[0].rng != 1
        assert kept[0].sample.text.endswith("。") and fits(kept[0].sample.pieces, 30, "word", ended=True)
