""" "Real or dream?": a held-out passage's seed with two endings, the book's and the model's.

/game [seconds | stop] starts (or stops) a chat's one game; players vote with the buttons until
the deadline; `GameTimer` edits the countdown (at most every 5 s) and reveals games whose
deadline passed. The deadline lives in the database and the timer scans it, so a game whose
time ran out while the bot was down is revealed when it starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot, CallbackQuery, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.db import games
from bot.db.models import Chat, Game, utcnow
from bot.generation import QueueFullError, ServiceClosedError
from bot.handlers.common import PARSE_MODE, lang_of, load_who, reply_html, telegram_call, who
from bot.handlers.generate import command_argument
from bot.keyboards import game_keyboard
from bot.parsing import format_temperature
from bot.services import Services, services_of
from bot.texts import text
from core.generator import Request

log = logging.getLogger(__name__)

GAME_MIN_S, GAME_MAX_S = 10, 300
COUNTDOWN_EVERY_S = 5.0  # Telegram limits edits; a countdown per second would be throttled
TICK_S = 0.5
# Tokens of held-out text: the seed shown, and the real rest the model's ending must match.
PASSAGE = {"char": (200, 120), "word": (60, 30)}
WEEK = timedelta(days=7)
_VOTE = re.compile(r"^g:(\d+):([AB])$")
TIMER_KEY = "game_timer"


def parse_seconds(argument: str, default: int) -> int | None:
    """ "" -> the default; "60" -> 60 when within bounds; anything else -> None."""
    if not argument:
        return default
    if not argument.isdigit():
        return None
    seconds = int(argument)
    return seconds if GAME_MIN_S <= seconds <= GAME_MAX_S else None


def _escape(value: str) -> str:
    return html.escape(value, quote=False)


def _endings(game: Game) -> tuple[str, str]:
    return (game.real_text, game.fake_text) if game.real_is == "A" else (game.fake_text, game.real_text)


def game_html(game: Game, votes: int, now_s: float | None = None) -> str:
    """The game message: seed, endings A and B, time left and the number of votes."""
    a, b = _endings(game)
    left = max(0, round((game.deadline - utcnow()).total_seconds())) if now_s is None else now_s
    return text(
        game.lang,
        "game_text",
        model=_escape(game.model_name),
        temperature=format_temperature(game.temperature),
        seed=_escape(game.seed),
        a=_escape(a),
        b=_escape(b),
        seconds=int(left),
        votes=votes,
    )


@dataclass(frozen=True)
class Reveal:
    """What a finished game's reveal says."""

    game: Game
    chat: int
    html: str


async def _finish(services: Services, game_id: int, *, stopped: bool) -> Reveal | None:
    """Mark the game revealed (once) and compose the reveal with results and running scores."""

    async def work(session: AsyncSession) -> Reveal | None:
        game = await games.finish(session, game_id=game_id, stopped=stopped)
        if game is None:
            return None
        chat = await session.get(Chat, game.chat_id)
        assert chat is not None
        if stopped:
            return Reveal(game, chat.telegram_id, text(game.lang, "game_stopped_text", real=game.real_is))
        votes = await games.guesses_of(session, game_id=game.id)
        right = [name for _, name, choice in votes if choice == game.real_is]
        wrong = [name for _, name, choice in votes if choice != game.real_is]
        lines = []
        if not votes:
            lines.append(text(game.lang, "game_nobody"))
        if right:
            lines.append(text(game.lang, "game_right", names=_escape(", ".join(right))))
        if wrong:
            lines.append(text(game.lang, "game_wrong", names=_escape(", ".join(wrong))))
        players = {name for _, name, _ in votes}
        board = await games.scores(session, chat_id=game.chat_id, limit=1000)
        for rank, score in enumerate((s for s in board if s.name in players), start=1):
            lines.append(
                text(
                    game.lang,
                    "game_score_line",
                    rank=rank,
                    name=_escape(score.name),
                    right=score.right,
                    played=score.played,
                )
            )
        a, b = _endings(game)
        body = text(
            game.lang,
            "game_reveal",
            seed=_escape(game.seed),
            a=_escape(a),
            b=_escape(b),
            real=game.real_is,
            fake="B" if game.real_is == "A" else "A",
            model=_escape(game.model_name),
            temperature=format_temperature(game.temperature),
            result="\n".join(lines),
        )
        return Reveal(game, chat.telegram_id, body)

    return await services.db.run(work)


async def reveal(bot: Bot, services: Services, game_id: int, *, stopped: bool = False) -> bool:
    """Reveal a game (False if another caller already did): the buttons go, the answer comes."""
    done = await _finish(services, game_id, stopped=stopped)
    if done is None:
        return False
    message_id = done.game.telegram_message_id
    if message_id is not None:
        with contextlib.suppress(TelegramError):
            await telegram_call(
                lambda: bot.edit_message_reply_markup(done.chat, message_id, reply_markup=None),
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
        log.warning("could not send the reveal of game %s: %s", game_id, exc)
    return True


class GameTimer:
    """One task for every chat's game: countdown edits and reveals, driven by the stored deadline."""

    def __init__(self, bot: Bot, services: Services) -> None:
        self.bot = bot
        self.services = services
        self._edited: dict[int, float] = {}  # game id -> monotonic time of the last countdown edit
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Scan now (reveals games that ran out while the bot was down), then every TICK_S."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="game-timer")

    async def stop(self) -> None:
        """Stop scanning; open games keep their deadline for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def shown(self, game_id: int) -> None:
        """The game's message was just sent: the next countdown edit is COUNTDOWN_EVERY_S away."""
        self._edited[game_id] = time.monotonic()

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a database or Telegram hiccup must not end the timer
                log.exception("game timer tick failed")
            await asyncio.sleep(TICK_S)

    async def tick(self) -> None:
        """Reveal every game past its deadline; edit the countdown of the others when due."""

        async def work(session: AsyncSession) -> list[tuple[Game, int, int]]:
            found = await games.unrevealed_games(session)
            return [(g, chat, await games.count_guesses(session, game_id=g.id)) for g, chat in found]

        for game, chat, votes in await self.services.db.run(work, write=False):
            if game.deadline <= utcnow():
                self._edited.pop(game.id, None)
                await reveal(self.bot, self.services, game.id)
                continue
            last = self._edited.setdefault(game.id, time.monotonic())
            if game.telegram_message_id is None or time.monotonic() - last < COUNTDOWN_EVERY_S:
                continue
            self._edited[game.id] = time.monotonic()
            await self._countdown(game, chat, game.telegram_message_id, votes)

    async def _countdown(self, game: Game, chat: int, message_id: int, votes: int) -> None:
        """Edit the time left and the votes into the game message (one try: the next tick retries)."""
        with contextlib.suppress(TelegramError):
            await telegram_call(
                lambda: self.bot.edit_message_text(
                    game_html(game, votes),
                    chat,
                    message_id,
                    parse_mode=PARSE_MODE,
                    reply_markup=game_keyboard(game.id, game.lang),
                ),
                idempotent=True,
                attempts=1,
            )


def timer_of(context: ContextTypes.DEFAULT_TYPE) -> GameTimer | None:
    """The application's game timer (None before post_init)."""
    timer: GameTimer | None = context.application.bot_data.get(TIMER_KEY)
    return timer


# -- handlers ----------------------------------------------------------------------------------


async def on_game(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/game, /game 60, /game stop."""
    message, tg_user, tg_chat = update.effective_message, update.effective_user, update.effective_chat
    if message is None or tg_user is None or tg_chat is None:
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
    wait = await services.limits.retry_after(tg_user.id, 1)
    if wait or await services.limits.busy(tg_user.id):
        await reply_html(
            message,
            text(lang, "rate_limited", limit=services.limits.per_minute, seconds=wait)
            if wait
            else text(lang, "one_at_a_time"),
        )
        return

    async def who(session: AsyncSession) -> tuple[int, int, str | None, float, bool]:
        user, chat, settings = await load_who(
            session, tg_user, tg_chat, default_model=services.generation.default
        )
        running = await games.open_game(session, chat_id=chat.id)
        return user.id, chat.id, settings.model_name, settings.temperature, running is not None

    user_id, chat_id, model_name, temperature, running = await services.db.run(who)
    if running:
        await reply_html(message, text(lang, "game_running"))
        return
    model = services.generation.resolve(model_name)
    info = services.generation.info(model)
    seed_len, rest_len = PASSAGE.get(info.level, PASSAGE["char"])
    ids = services.novelty.passage(model, seed_len + rest_len, np.random.default_rng())
    if ids is None:
        await reply_html(message, text(lang, "game_no_book"))
        return
    tokenizer = services.generation.generators[model].bundle.tokenizer
    seed, real = tokenizer.decode(ids[:seed_len]), tokenizer.decode(ids[seed_len:])
    if info.level == "char" and " " in seed[:40]:
        seed = seed.split(" ", 1)[1]  # start at a word, not inside one
    if not await services.limits.begin(tg_user.id):  # another request began meanwhile
        await reply_html(message, text(lang, "one_at_a_time"))
        return
    try:
        request = Request(seed, length=rest_len, temperature=temperature, rng=secrets.randbits(63))
        sample = await services.generation.generate(request, model=model)
        await services.limits.charge(tg_user.id, 1)
    except (QueueFullError, ServiceClosedError):
        await reply_html(message, text(lang, "busy"))
        return
    finally:
        await services.limits.end(tg_user.id)

    async def create(session: AsyncSession) -> Game | None:
        await session.get(Chat, chat_id, with_for_update=True)  # one /game at a time per chat
        if await games.open_game(session, chat_id=chat_id) is not None:
            return None
        return await games.create_game(
            session,
            chat_id=chat_id,
            started_by=user_id,
            model_name=model,
            model_version=info.version,
            temperature=temperature,
            seed=seed,
            real_text=real,
            fake_text=sample.text,
            real_is=secrets.choice("AB"),
            lang=lang,
            deadline=utcnow() + timedelta(seconds=seconds),
        )

    game = await services.db.run(create)
    if game is None:
        await reply_html(message, text(lang, "game_running"))
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


async def _stop(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/game stop: by whoever started the game, or a group admin."""
    message, tg_user, tg_chat = update.effective_message, update.effective_user, update.effective_chat
    assert message and tg_user and tg_chat
    services, lang = services_of(context), lang_of(update)

    async def find(session: AsyncSession) -> tuple[int, Game | None]:
        user, chat, _ = await load_who(session, tg_user, tg_chat, default_model=services.generation.default)
        return user.id, await games.open_game(session, chat_id=chat.id)

    user_id, game = await services.db.run(find)
    if game is None:
        await reply_html(message, text(lang, "game_none"))
        return
    if game.started_by != user_id and not await _is_admin(context.bot, tg_chat.id, tg_user.id):
        await reply_html(message, text(lang, "game_stop_denied"))
        return
    await reveal(context.bot, services, game.id, stopped=True)


async def _is_admin(bot: Bot, chat_id: int, user_id: int) -> bool:
    try:
        member = await telegram_call(lambda: bot.get_chat_member(chat_id, user_id), idempotent=True)
    except TelegramError:
        return False
    return member.status in ("administrator", "creator")


async def on_vote(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A press on "A is real" / "B is real": the player's (last) vote counts until the deadline."""
    query: CallbackQuery | None = update.callback_query
    if query is None:
        return
    lang = lang_of(update)
    match = _VOTE.match(query.data or "")
    services = services_of(context)
    if match is None:
        await _answer(query, text(lang, "button_invalid"))
        return
    game_id, choice = int(match[1]), match[2]
    user_id = (await who(services, update)).user_id

    async def work(session: AsyncSession) -> bool:
        return await games.guess(session, game_id=game_id, user_id=user_id, choice=choice)

    counted = await services.db.run(work)
    await _answer(query, text(lang, "game_voted", choice=choice) if counted else text(lang, "game_over"))


async def _answer(query: CallbackQuery, message: str) -> None:
    with contextlib.suppress(TelegramError):
        await telegram_call(lambda: query.answer(message), idempotent=True)


async def on_scores(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/scores: the chat's leaderboard, this week and all time."""
    message, tg_user, tg_chat = update.effective_message, update.effective_user, update.effective_chat
    if message is None or tg_user is None or tg_chat is None:
        return
    services, lang = services_of(context), lang_of(update)

    async def work(session: AsyncSession) -> tuple[list[games.Score], list[games.Score]]:
        _, chat, _ = await load_who(session, tg_user, tg_chat, default_model=services.generation.default)
        week = await games.scores(session, chat_id=chat.id, since=utcnow() - WEEK)
        return week, await games.scores(session, chat_id=chat.id)

    week, all_time = await services.db.run(work)
    if not all_time:
        await reply_html(message, text(lang, "scores_none"))
        return
    parts = [text(lang, "scores_title")]
    for title, board in (("scores_week", week), ("scores_all", all_time)):
        if not board:
            continue
        lines = [
            text(lang, "game_score_line", rank=i, name=_escape(s.name), right=s.right, played=s.played)
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
            model=_escape(r.model),
            temperature=format_temperature(r.temperature),
            share=round(100 * r.fooled / r.votes),
            votes=r.votes,
        )
        for r in rows
    ]
    await reply_html(message, text(lang, "fooled_title") + "\n" + "\n".join(lines))
