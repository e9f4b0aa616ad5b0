""" "Real or dream?": a held-out passage's seed with two endings, the book's and the model's.

/game [seconds | stop] starts (or stops) a chat's one game; players vote with the buttons until
the deadline; the replica's `GameTimer` (bot/handlers/game_timer.py) edits the countdown (at
most every 5 s) and reveals games whose deadline passed. The deadline lives in the database and
the timer scans it, so a game whose time ran out while the bot was down is revealed when it
starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot, Message, Update
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot import keyboards as kb
from bot.admission import Ticket, admit
from bot.calls import PARSE_MODE, reply_html, telegram_call
from bot.db import repository as repo
from bot.db.models import Game, utcnow
from bot.db.repository import games
from bot.finishing import asked, finish, finished_pieces, fits, keep_whole
from bot.handlers.presses import Press
from bot.keyboards import game_keyboard
from bot.message_text import command_argument
from bot.parsing import format_temperature
from bot.render import escape, fit_lines
from bot.services import Services, services_of
from bot.texts import text
from bot.who import Seen, Who, lang_of, store_user_and_chat, who
from core.generator import Request, Sample

if TYPE_CHECKING:
    from bot.handlers.game_timer import GameTimer

log = logging.getLogger(__name__)

GAME_MIN_S, GAME_MAX_S = 10, 300
# Tokens of held-out text: the seed shown, and the real rest the model's ending must match.
PASSAGE = {"char": (200, 120), "word": (60, 30)}
PASSAGE_TRIES = 8  # held-out passages drawn until one has a whole ending, ended by the rule
WEEK = timedelta(days=7)
TIMER_KEY = "game_timer"


def parse_seconds(argument: str, default: int) -> int | None:
    """ "" -> the default; "60" -> 60 when within bounds; anything else -> None."""
    if not argument:
        return default
    if not argument.isdigit():
        return None
    seconds = int(argument)
    return seconds if GAME_MIN_S <= seconds <= GAME_MAX_S else None


def _endings(game: Game) -> tuple[str, str]:
    """Endings A and B as shown: each one's line breaks and runs of spaces as one space. The
    books are hard-wrapped (~70 columns) and the models rarely break a line once their window
    has passed the last break: the book's ending had a line break in 13 of 13 games of a
    newcomer pass, the model's in 2, so the layout alone told which was real."""
    real, fake = " ".join(game.real_text.split()), " ".join(game.fake_text.split())
    return (real, fake) if game.real_is == "A" else (fake, real)


def _split_names(lines: list[str]) -> list[str]:
    """Lines as they can be left out one by one (a long list of names is one line per name)."""
    return [part for line in lines for part in ([line] if len(line) < 400 else line.split(", "))]


def game_html(game: Game, votes: int, now_s: float | None = None, *, ended: bool = False) -> str:
    """The game message: seed, endings A and B, and time left with the number of votes (or,
    once revealed or stopped, that it ended)."""
    a, b = _endings(game)
    left = max(0, round((game.deadline - utcnow()).total_seconds())) if now_s is None else now_s
    status = (
        text(game.lang, "game_ended", votes=votes)
        if ended
        else text(game.lang, "game_left", seconds=int(left), votes=votes)
    )
    return text(
        game.lang,
        "game_text",
        model=escape(game.model_name),
        temperature=format_temperature(game.temperature),
        seed=escape(game.seed),
        a=escape(a),
        b=escape(b),
        status=status,
    )


@dataclass(frozen=True)
class Reveal:
    """What a finished game's reveal says."""

    game: Game
    chat: int
    html: str
    votes: int


async def _compose(session: AsyncSession, game_id: int, *, stopped: bool) -> Reveal | None:
    """Mark the game revealed (once) and compose the reveal with results and running scores."""
    game = await games.finish(session, game_id=game_id, stopped=stopped)
    if game is None:
        return None
    chat = await repo.chat_by_id(session, chat_id=game.chat_id)
    votes = await games.guesses_of(session, game_id=game.id)
    if stopped:
        stopped_html = text(game.lang, "game_stopped_text", real=game.real_is)
        return Reveal(game, chat.telegram_id, stopped_html, len(votes))
    right = [name for _, name, choice in votes if choice == game.real_is]
    wrong = [name for _, name, choice in votes if choice != game.real_is]
    lines = []
    if not votes:
        lines.append(text(game.lang, "game_nobody"))
    if right:
        lines.append(text(game.lang, "game_right", names=escape(", ".join(right))))
    if wrong:
        lines.append(text(game.lang, "game_wrong", names=escape(", ".join(wrong))))
    players = {name for _, name, _ in votes}
    board = await games.scores(session, chat_id=game.chat_id, limit=1000)
    for rank, score in enumerate((s for s in board if s.name in players), start=1):
        lines.append(
            text(
                game.lang,
                "game_score_line",
                rank=rank,
                name=escape(score.name),
                right=score.right,
                played=score.played,
            )
        )
    a, b = _endings(game)
    head = text(
        game.lang,
        "game_reveal",
        seed=escape(game.seed),
        a=escape(a),
        b=escape(b),
        real=game.real_is,
        fake="B" if game.real_is == "A" else "A",
        model=escape(game.model_name),
        temperature=format_temperature(game.temperature),
        result="",
    ).rstrip()
    # Many players (long names, a hundred votes) must not push the reveal past Telegram's
    # limit: whole lines are left out from the end, and the count of them said instead.
    body = fit_lines(head, _split_names(lines), "", text(game.lang, "game_more_lines", count="{count}"))
    return Reveal(game, chat.telegram_id, body, len(votes))


async def reveal(bot: Bot, services: Services, game_id: int, *, stopped: bool = False) -> bool:
    """Reveal a game (False if another caller already did): the game message shows its final
    state ("ended · N votes", no buttons), the answer comes in reply."""
    done = await services.db.run(lambda session: _compose(session, game_id, stopped=stopped))
    if done is None:
        return False
    await _announce(bot, done)
    return True


async def reveal_many(bot: Bot, services: Services, game_ids: list[int], *, at_once: int = 8) -> int:
    """Reveal games whose deadline passed, in one transaction (many games ending together cost
    one write, not one each), then announce them `at_once` at a time; returns how many."""

    async def work(session: AsyncSession) -> list[Reveal]:
        found = [await _compose(session, game_id, stopped=False) for game_id in game_ids]
        return [done for done in found if done is not None]

    reveals = await services.db.run(work)
    gate = asyncio.Semaphore(at_once)

    async def announce(done: Reveal) -> None:
        async with gate:
            await _announce(bot, done)

    await asyncio.gather(*(announce(done) for done in reveals))
    return len(reveals)


async def _announce(bot: Bot, done: Reveal) -> None:
    """The game message's final state, then the answer in reply (a failure is logged: the
    game stays revealed)."""
    message_id = done.game.telegram_message_id
    if message_id is not None:
        final = game_html(done.game, done.votes, ended=True)
        with contextlib.suppress(TelegramError):
            await telegram_call(
                lambda: bot.edit_message_text(
                    final, done.chat, message_id, parse_mode=PARSE_MODE, reply_markup=None
                ),
                idempotent=True,
            )
    try:
        await telegram_call(
            lambda: bot.send_message(
                done.chat,
                done.html,
                parse_mode=PARSE_MODE,
                reply_to_message_id=message_id,
                allow_sending_without_reply=True,
            )
        )
    except TelegramError as exc:
        log.warning("could not send the reveal of game %s: %s", done.game.id, exc)


def timer_of(context: ContextTypes.DEFAULT_TYPE) -> GameTimer | None:
    """The application's game timer (None before post_init)."""
    timer: GameTimer | None = context.application.bot_data.get(TIMER_KEY)
    return timer


# -- handlers ----------------------------------------------------------------------------------


async def on_game(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/game, /game 60, /game stop."""
    message = update.effective_message
    if message is None or update.effective_user is None or update.effective_chat is None:
        return
    services, lang = services_of(context), lang_of(update)
    argument = command_argument(message).lower()
    if argument == "stop":
        await _stop(update, context)
        return
    seconds = parse_seconds(argument, services.settings.game_seconds)
    if seconds is None:
        await reply_html(message, text(lang, "game_bad", low=GAME_MIN_S, high=GAME_MAX_S))
        return
    async with admit(services, context.bot, update, reply_to=message) as ticket:
        if not ticket.granted:
            return
        asker = await ticket.who()
        chat_id = asker.chat_id
        assert chat_id is not None

        async def running(session: AsyncSession) -> bool:
            return await games.open_game(session, chat_id=chat_id) is not None

        if await services.db.run(running, write=False):
            await reply_html(message, text(lang, "game_running"))
            return
        passage = _passage(services, asker.model, asker.level)
        if passage is None:
            await reply_html(message, text(lang, "game_no_book"))
            return
        seed, real, rest_len = passage
        made = await _fake(ticket, seed, rest_len, asker)
        if made is None:
            return
        fake = made.text
        version = made.model_version or asker.model_version  # the version that drew it

        async def create(session: AsyncSession) -> Game | None:
            await repo.lock_chat(session, chat_id=chat_id)  # one /game at a time per chat
            if not await repo.claim_update(session, update_id=update.update_id):
                return None  # a redelivered /game: answered already
            if await games.open_game(session, chat_id=chat_id) is not None:
                return None
            return await games.create_game(
                session,
                chat_id=chat_id,
                started_by=asker.user_id,
                model_name=asker.model,
                model_version=version,
                temperature=asker.temperature,
                seed=seed,
                real_text=real,
                fake_text=fake,
                real_is=secrets.choice("AB"),
                lang=lang,
                deadline=utcnow() + timedelta(seconds=seconds),
                timer_replica=services.settings.replica_id,  # this replica's timer drives it
                timer_until=utcnow() + games.TIMER_LEASE,
            )

        game = await services.db.run(create)
    if game is None:
        return
    sent = await reply_html(message, game_html(game, 0, seconds), reply_markup=game_keyboard(game.id, lang))
    if sent is not None:
        game_id, sent_id = game.id, sent.message_id

        async def remember(session: AsyncSession) -> None:
            await games.set_game_message(session, game_id=game_id, message_id=sent_id)

        await services.db.run(remember)
        timer = timer_of(context)
        if timer is not None:
            timer.shown(game.id)


async def _fake(ticket: Ticket, seed: str, rest_len: int, asker: Who) -> Sample | None:
    """The model's ending of the seed, finished like the real one; drawn again (keep_whole)
    while it is mostly blank or cut at the length (not at a sentence end), either of which
    would give the game away. None when refused."""
    request = Request(
        seed, length=asked(rest_len, asker.level), temperature=asker.temperature, rng=secrets.randbits(63)
    )
    drawn = [(request, asker.model)]
    made = await ticket.generate(drawn)
    if made is None:
        return None
    finished = [finish(made[0], rest_len, asker.level)]
    whole = await keep_whole(ticket, drawn, finished, rest_len, [asker.level], ended=True)
    return whole[0].sample if whole is not None else None


def _passage(services: Services, model: str, level: str) -> tuple[str, str, int] | None:
    """A held-out passage: its beginning (the seed), its real ending (cut by the same rule as
    the model's, so the cut tells nothing) and the ending's length; None without a book."""
    seed_len, rest_len = PASSAGE.get(level, PASSAGE["char"])
    tokenizer = services.generation.generators[model].bundle.tokenizer
    rng = np.random.default_rng()
    ids: list[int] = []
    pieces: list[str] = []
    for _ in range(PASSAGE_TRIES):  # skipped: an ending mostly blank (verse), or cut at the length
        drawn = services.novelty.passage(model, seed_len + asked(rest_len, level), rng)
        if drawn is None:
            return None
        ids = drawn
        pieces = finished_pieces([tokenizer.tokens[i] for i in ids[seed_len:]], rest_len, level)
        if fits(pieces, rest_len, level, ended=True):
            break
    seed, real = tokenizer.decode(ids[:seed_len]), "".join(pieces).rstrip()
    if level == "char" and " " in seed[:40]:
        seed = seed.split(" ", 1)[1]  # start at a word, not inside one
    return seed, real, rest_len


async def _stop(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/game stop: by whoever started the game, or a group admin (anonymous ones included)."""
    message, tg_user, tg_chat = update.effective_message, update.effective_user, update.effective_chat
    assert message and tg_user and tg_chat
    services = services_of(context)
    asker = await who(services, update)
    chat_id = asker.chat_id
    assert chat_id is not None
    game = await services.db.run(lambda session: games.open_game(session, chat_id=chat_id), write=False)
    if game is None:
        await reply_html(message, text(asker.lang, "game_none"))
        return
    if game.started_by != asker.user_id and not await is_group_admin(context.bot, message):
        await reply_html(message, text(asker.lang, "game_stop_denied"))
        return
    await reveal(context.bot, services, game.id, stopped=True)
    timer = timer_of(context)
    if timer is not None:
        timer.forget(game.id)


async def is_group_admin(bot: Bot, message: Message) -> bool:
    """Whether a message's sender administers its chat, as Telegram says now (never cached:
    admins change). A message an anonymous admin sends on behalf of the group counts."""
    if message.sender_chat is not None and message.sender_chat.id == message.chat.id:
        return True  # only the group's admins can post as the group itself
    if message.from_user is None:
        return False
    chat_id, user_id = message.chat.id, message.from_user.id
    try:
        member = await telegram_call(lambda: bot.get_chat_member(chat_id, user_id), idempotent=True)
    except TelegramError as exc:
        log.warning("could not check a group admin: %s", exc)
        return False
    return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


async def on_vote_press(press: Press) -> None:
    """ "A is real" / "B is real": counted only from the game's own message in its own chat;
    the player's last vote counts until the deadline."""
    action = press.action
    assert isinstance(action, kb.GameVote)
    tg_user = press.query.from_user

    async def work(session: AsyncSession) -> str:
        found = await games.get_game_origin(session, game_id=action.game_id)
        if found is None or not press.carried_by(found.chat_telegram_id, found.game.telegram_message_id):
            return "button_invalid"
        user, _ = await store_user_and_chat(session, Seen.of(tg_user, None))
        counted = await games.guess(session, game_id=action.game_id, user_id=user.id, choice=action.choice)
        return "game_voted" if counted else "game_over"

    key = await press.services.db.run(work)
    await press.answer(text(press.lang, key, choice=action.choice))


async def on_scores(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/scores: the chat's leaderboard, this week and all time."""
    message, tg_user, tg_chat = update.effective_message, update.effective_user, update.effective_chat
    if message is None or tg_user is None or tg_chat is None:
        return
    services = services_of(context)
    asker = await who(services, update)
    lang, chat_id = asker.lang, asker.chat_id
    assert chat_id is not None

    async def work(session: AsyncSession) -> tuple[list[games.Score], list[games.Score]]:
        week = await games.scores(session, chat_id=chat_id, since=utcnow() - WEEK)
        return week, await games.scores(session, chat_id=chat_id)

    week, all_time = await services.db.run(work, write=False)
    if not all_time:
        await reply_html(message, text(lang, "scores_none"))
        return
    parts = [text(lang, "scores_title")]
    for title, board in (("scores_week", week), ("scores_all", all_time)):
        if not board:
            continue
        lines = [
            text(lang, "game_score_line", rank=i, name=escape(s.name), right=s.right, played=s.played)
            for i, s in enumerate(board, start=1)
        ]
        parts.append(text(lang, title) + "\n" + "\n".join(lines))
    await reply_html(message, "\n\n".join(parts))


async def on_fooled(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/fooled: per model and temperature, the share of votes that went to the model's ending."""
    message = update.effective_message
    if message is None:
        return
    services, lang = services_of(context), lang_of(update)
    rows = await services.db.run(games.fooled_by_model, write=False)
    if not rows:
        await reply_html(message, text(lang, "fooled_none"))
        return
    lines = [
        text(
            lang,
            "fooled_line",
            model=escape(r.model),
            temperature=format_temperature(r.temperature),
            share=round(100 * r.fooled / r.votes),
            votes=r.votes,
        )
        for r in rows
    ]
    await reply_html(message, text(lang, "fooled_title") + "\n" + "\n".join(lines))
