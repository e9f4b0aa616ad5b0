"""Helpers shared by the handlers: who is asking, in which language, and replying safely."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import httpx
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Chat as TgChat
from telegram import Message, Update
from telegram import User as TgUser
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.copying import badge
from bot.db import repository as repo
from bot.db.models import Chat, StoredSample, User
from bot.db.repository import GenerationSettings
from bot.generation import GenerationService
from bot.parsing import effective_length
from bot.render import sample_html
from bot.services import Services
from bot.texts import language_of, text
from core.novelty import Novelty

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Who:
    """The stored user and chat behind an update, with the settings that apply."""

    user_id: int
    chat_id: int
    settings: GenerationSettings
    lang: str


def lang_of(update: Update) -> str:
    """The reply language for this update's user."""
    user = update.effective_user
    return language_of(user.language_code if user else None)


def display_name(user: TgUser) -> str:
    """A short name for the user (never their id)."""
    return (user.full_name or user.username or "there").replace("\x00", "")[:256]


async def load_who(
    session: AsyncSession, tg_user: TgUser, tg_chat: TgChat, *, default_model: str
) -> tuple[User, Chat, GenerationSettings]:
    """Get or create the user and chat rows and resolve the settings for this chat."""
    user = await repo.get_or_create_user(
        session,
        telegram_id=tg_user.id,
        display_name=display_name(tg_user),
        language_code=tg_user.language_code,
    )
    chat_type = tg_chat.type if tg_chat.type in ("private", "group", "supergroup", "channel") else "group"
    chat = await repo.get_or_create_chat(
        session,
        telegram_id=tg_chat.id,
        type=chat_type,
        title=(tg_chat.title or "").replace("\x00", "")[:256] or None,
    )
    return user, chat, repo.resolve_settings(user, chat, default_model=default_model)


def default_model_for(generation: GenerationService, language_code: str | None) -> str:
    """The model a user who never chose one starts on: the bot's default when it speaks the
    user's Telegram language, else a loaded model that does (a Chinese client gets Chinese)."""
    wanted = "zh" if language_of(language_code) == "zh" else "en"
    speaks = [info.name for info in generation.models() if (info.language == "zh") == (wanted == "zh")]
    return generation.default if not speaks or generation.default in speaks else speaks[0]


async def who(services: Services, update: Update) -> Who:
    """The stored user and chat behind an update (created on first sight), with the settings
    that apply in this chat: the one database call every handler starts from."""
    assert update.effective_user and update.effective_chat
    tg_user, tg_chat = update.effective_user, update.effective_chat
    default = default_model_for(services.generation, tg_user.language_code)

    async def work(session: AsyncSession) -> Who:
        user, chat, settings = await load_who(session, tg_user, tg_chat, default_model=default)
        return Who(user.id, chat.id, settings, lang_of(update))

    # The first call of every update: on SQLite it lets writes of work under way go first.
    return await services.db.run(work, admitting=True)


def unit_of(generation: GenerationService, model: str, lang: str) -> tuple[str, str]:
    """The model's level ("char"/"word") and the word for one token in the user's language."""
    level = generation.info(generation.resolve(model)).level
    return level, text(lang, "unit_char" if level == "char" else "unit_word")


def stored_sample_html(
    generation: GenerationService, sample: StoredSample, lang: str, notes: list[str] | None = None
) -> str:
    """A stored sample as a message body (a char sample's length is what was sent: it ends on a
    word), with the novelty badge from the numbers stored with it."""
    level, unit = unit_of(generation, generation.resolve(sample.model_name), lang)
    stored = (
        Novelty(sample.longest_copied, sample.new_ngram_share)
        if sample.longest_copied is not None and sample.new_ngram_share is not None
        else None
    )
    return sample_html(
        seed=sample.seed,
        continuation=sample.text,
        model=sample.model_name,
        temperature=sample.temperature,
        length=len(sample.text) if level == "char" else sample.length,
        unit=unit,
        lang=lang,
        notes=notes,
        badge=badge(stored, level, lang),
    )


def settings_text(generation: GenerationService, settings: GenerationSettings, lang: str) -> str:
    """The three settings as HTML lines."""
    model = generation.resolve(settings.model_name)
    info = generation.info(model)
    level, unit = unit_of(generation, model, lang)
    return text(
        lang,
        "settings",
        model=model,
        language=text(lang, f"lang_{'zh' if info.language == 'zh' else 'en'}"),
        unit=unit,
        temperature=f"{settings.temperature:g}",
        length=effective_length(settings.length, level),
    )


def certainly_not_sent(exc: TelegramError) -> bool:
    """Whether a failed request certainly did not take effect at Telegram.

    True when Telegram answered with an error (429, 4xx, 5xx) or the request never left this
    machine (connection refused, connect or pool time-out). False when it may have arrived:
    a read/write time-out or a connection broken after the request was written.
    """
    if isinstance(exc, TimedOut):
        return isinstance(exc.__cause__, httpx.ConnectTimeout | httpx.PoolTimeout)
    if isinstance(exc, NetworkError) and exc.__cause__ is not None:
        return isinstance(exc.__cause__, httpx.ConnectError)
    return True  # an answer from Telegram (PTB raises these without an underlying cause)


async def telegram_call(
    make: Callable[[], Awaitable[T]], *, idempotent: bool = False, attempts: int = 4, base_delay: float = 0.5
) -> T:
    """Call the Bot API: the bot's one retry layer (AIORateLimiter only paces, max_retries=0).

    Retried, at most `attempts` tries in all: 429 (after the wait Telegram asks for), 5xx and
    requests that never left (connection refused). Never retried: refusals (400/403), which
    would fail again, and, unless the call is `idempotent` (answers, edits), anything that may
    have reached Telegram (time-outs): a second sendMessage could show the sample twice, so
    the caller records it and the outbox decides (docs/reliability.md).
    """
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            return await make()
        except RetryAfter as exc:
            if last:
                raise
            wait = exc.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            log.info("Bot API asked to wait %.1f s; retrying then", seconds)
            await asyncio.sleep(seconds + 0.1)
        except (BadRequest, Forbidden):
            raise
        except NetworkError as exc:
            if last or not (idempotent or certainly_not_sent(exc)):
                raise
            log.info("Bot API call failed (%s); retrying", exc)
            await asyncio.sleep(base_delay * 2**attempt)
    raise AssertionError("unreachable")


async def reply_html(message: Message | None, html_text: str, **kwargs: object) -> Message | None:
    """Reply in HTML; a failure to send is logged, not raised (the caller records it as undelivered)."""
    if message is None:
        return None
    quote = message.chat.type != "private"
    try:
        return await telegram_call(lambda: message.reply_html(html_text, do_quote=quote, **kwargs))  # type: ignore[arg-type]
    except TelegramError as exc:
        log.warning("could not send a reply: %s", exc)
        return None


PARSE_MODE = ParseMode.HTML
