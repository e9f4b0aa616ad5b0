"""/start, /help and commands the bot does not have."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.calls import reply_html
from bot.render import escape, settings_html, unit_of
from bot.services import services_of
from bot.texts import command_list, text
from bot.who import display_name, lang_of, who


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Welcome: what the bot does, the current settings and the commands."""
    services = services_of(context)
    if update.effective_user is None:
        return
    asker = await who(services, update)
    _, unit = unit_of(services.generation, asker.model, asker.lang)
    # In a group plain text is not for the bot, and the command list is long: how to ask there.
    group = update.effective_chat is not None and update.effective_chat.type != "private"
    await reply_html(
        update.effective_message,
        text(
            asker.lang,
            "welcome_group" if group else "welcome",
            name=escape(display_name(update.effective_user)),
            unit=unit,
            settings=settings_html(
                services.generation, asker.model, asker.temperature, asker.length, asker.lang
            ),
            commands=command_list(asker.lang),
        ),
    )


async def on_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The command list."""
    lang = lang_of(update)
    await reply_html(update.effective_message, text(lang, "help", commands=command_list(lang)))


async def on_unknown(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command the bot does not have: say so, then the command list."""
    message = update.effective_message
    lang = lang_of(update)
    typed = (message.text or "").split(maxsplit=1)[0][:64] if message else ""
    said = text(lang, "unknown_command", command=escape(typed))
    await reply_html(message, said + "\n\n" + text(lang, "help", commands=command_list(lang)))
