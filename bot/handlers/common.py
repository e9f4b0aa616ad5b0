"""Helpers shared by the handlers: who is asking, in which language, and replying safely."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Chat as TgChat
from telegram import Message, Update
from telegram import User as TgUser
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot.db import repository as repo
from bot.db.models import Chat, User
from bot.db.repository import GenerationSettings
from bot.generation import GenerationService
from bot.parsing import effective_length
from bot.texts import language_of, text

log = logging.getLogger(__name__)


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
    return (user.full_name or user.username or "there")[:256]


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
    chat = await repo.get_or_create_chat(session, telegram_id=tg_chat.id, type=chat_type, title=tg_chat.title)
    return user, chat, repo.resolve_settings(user, chat, default_model=default_model)


def unit_of(generation: GenerationService, model: str, lang: str) -> tuple[str, str]:
    """The model's level ("char"/"word") and the word for one token in the user's language."""
    level = generation.info(generation.resolve(model)).level
    return level, text(lang, "unit_char" if level == "char" else "unit_word")


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


async def reply_html(message: Message | None, html_text: str, **kwargs: object) -> Message | None:
    """Reply in HTML; a failure to send is logged, not raised (the caller has nothing to undo)."""
    if message is None:
        return None
    try:
        return await message.reply_html(html_text, do_quote=message.chat.type != "private", **kwargs)  # type: ignore[arg-type]
    except TelegramError as exc:
        log.warning("could not send a reply: %s", exc)
        return None


PARSE_MODE = ParseMode.HTML
