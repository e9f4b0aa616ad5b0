"""/groupdefault: a group's admins set the model, temperature and length its members start with.

A member's own choice (/temp, /model, /length) always wins; the group's default only fills in
what a member never chose (repository.resolve_settings).
"""

from __future__ import annotations

import html
import logging
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.db import repository as repo
from bot.db.models import Chat
from bot.handlers.common import lang_of, load_who, reply_html, telegram_call, unit_of
from bot.handlers.generate import command_argument
from bot.parsing import format_temperature, parse_length, parse_temperature
from bot.services import services_of
from bot.texts import text
from core.limits import length_bounds

log = logging.getLogger(__name__)
_ADMINS = (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


async def _is_admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """Whether the sender administers this chat, as Telegram says now (never cached: admins change)."""
    assert update.effective_chat and update.effective_user
    chat_id, user_id = update.effective_chat.id, update.effective_user.id
    try:
        member = await telegram_call(lambda: context.bot.get_chat_member(chat_id, user_id), idempotent=True)
    except TelegramError as exc:
        log.warning("could not check a group admin: %s", exc)
        return False
    return member.status in _ADMINS


def _shown(chat: Chat, lang: str) -> str:
    none = text(lang, "group_default_none")
    return text(
        lang,
        "group_default_show",
        model=html.escape(chat.model_name) if chat.model_name else none,
        temperature=format_temperature(chat.temperature) if chat.temperature is not None else none,
        length=chat.sample_length if chat.sample_length is not None else none,
    )


async def on_group_default(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/groupdefault shows the group's defaults; `temp X`, `model NAME`, `length N`, `clear` set them."""
    message, tg_chat, tg_user = update.effective_message, update.effective_chat, update.effective_user
    if message is None or tg_chat is None or tg_user is None:
        return
    lang = lang_of(update)
    if tg_chat.type not in ("group", "supergroup"):
        await reply_html(message, text(lang, "group_default_private"))
        return
    services = services_of(context)
    words = command_argument(message).split(maxsplit=1)
    what, value = (words[0].lower(), words[1] if len(words) > 1 else "") if words else ("", "")
    if what and not await _is_admin(update, context):
        await reply_html(message, text(lang, "group_default_admins"))
        return
    default = services.generation.default

    async def load(session: AsyncSession) -> Chat:
        _, chat, _ = await load_who(session, tg_user, tg_chat, default_model=default)
        return chat

    chat = await services.db.run(load)
    change: dict[str, Any] = {}
    if what == "":
        await reply_html(message, _shown(chat, lang))
        return
    if what == "clear":
        change = {"temperature": None, "length": None, "model_name": None}
    elif what in ("temp", "temperature") and (temperature := parse_temperature(value)) is not None:
        change = {"temperature": temperature}
    elif what == "model" and value in services.generation.generators:
        change = {"model_name": value}
    elif what == "length":
        level, _ = unit_of(services.generation, chat.model_name or default, lang)
        length = parse_length(value, level)
        if length is None:
            low, high = length_bounds(level)
            await reply_html(message, text(lang, "length_bad", low=low, high=high, example=high // 5))
            return
        change = {"length": length}
    else:
        await reply_html(message, text(lang, "group_default_usage"))
        return
    updated = await services.db.run(partial(repo.set_group_defaults, chat_id=chat.id, **change))
    await reply_html(message, text(lang, "group_default_set") + "\n" + _shown(updated, lang))
