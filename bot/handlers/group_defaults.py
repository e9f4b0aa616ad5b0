"""/groupdefault: a group's admins set the model, temperature and length its members start with.

A member's own choice (/temp, /model, /length) always wins; the group's default only fills in
what a member never chose (repository.resolve_settings).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from telegram import Update
from telegram.ext import ContextTypes

from bot.calls import reply_html
from bot.db import repository as repo
from bot.db.models import Chat
from bot.handlers.game import is_group_admin
from bot.message_text import command_argument
from bot.parsing import format_temperature, parse_length, parse_temperature, too_precise
from bot.render import escape, unit_of
from bot.services import services_of
from bot.texts import text
from bot.who import lang_of, who
from core.limits import TEMPERATURE_DECIMALS, default_length, length_bounds


def _shown(chat: Chat, lang: str) -> str:
    none = text(lang, "group_default_none")
    return text(
        lang,
        "group_default_show",
        model=escape(chat.model_name) if chat.model_name else none,
        temperature=format_temperature(chat.temperature) if chat.temperature is not None else none,
        length=" / ".join(
            text(lang, "group_default_length", value=value, unit=text(lang, unit))
            for value, unit in ((chat.length_char, "unit_char"), (chat.length_word, "unit_word"))
            if value is not None
        )
        or none,
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
    if what and not await is_group_admin(context.bot, message):
        await reply_html(message, text(lang, "group_default_admins"))
        return
    asker = await who(services, update)
    chat_id = asker.chat_id
    assert chat_id is not None

    chat = await services.db.run(partial(repo.chat_by_id, chat_id=chat_id), write=False)
    change: dict[str, Any] = {}
    if what == "":
        await reply_html(message, _shown(chat, lang))
        return
    if what == "clear":
        change = {"temperature": None, "length": None, "model_name": None}
    elif what in ("temp", "temperature") and value:
        temperature = parse_temperature(value)
        if temperature is None:  # /temp's answers, with this command in the example
            precise = too_precise(value)
            key = "temp_too_precise" if precise else "temp_bad"
            await reply_html(
                message, text(lang, key, decimals=TEMPERATURE_DECIMALS, command="/groupdefault temp")
            )
            return
        change = {"temperature": temperature}
    elif what == "model" and value:
        if value not in services.generation.generators:  # the same answer as /model's
            await reply_html(message, text(lang, "model_bad", name=escape(value[:64])))
            return
        change = {"model_name": value}
    elif what == "length" and value:
        # In the unit of the model members get by default: the group's, else the bot's (never
        # the admin's own model: a length in words would not reach members writing characters).
        level, _ = unit_of(services.generation, chat.model_name or services.settings.default_model, lang)
        length = parse_length(value, level)
        if length is None:
            low, high = length_bounds(level)
            await reply_html(
                message,
                text(
                    lang,
                    "length_bad",
                    low=low,
                    high=high,
                    example=default_length(level),
                    command="/groupdefault length",
                ),
            )
            return
        change = {"length": length, "level": level}
    else:
        await reply_html(message, text(lang, "group_default_usage"))
        return
    updated = await services.db.run(partial(repo.set_group_defaults, chat_id=chat.id, **change))
    await reply_html(message, text(lang, "group_default_set") + "\n" + _shown(updated, lang))
