"""/temp, /length, /model, /settings and the preset and model buttons."""

from __future__ import annotations

import html
from dataclasses import replace
from functools import partial

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.ext import ContextTypes

from bot import keyboards as kb
from bot.calls import edit_html, reply_html
from bot.db import repository as repo
from bot.handlers.presses import Press
from bot.message_text import command_argument
from bot.parsing import format_temperature, parse_length, parse_temperature, too_precise
from bot.render import escape, settings_html, unit_of
from bot.services import Services, services_of
from bot.texts import corpus_line, text
from bot.who import Who, who
from core.limits import TEMPERATURE_DECIMALS, default_length, length_bounds


def _plain(html_text: str) -> str:
    """A toast shows plain text: the message without its bold tags."""
    return html.unescape(html_text.replace("<b>", "").replace("</b>", ""))


async def on_settings(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The user's current settings."""
    services = services_of(context)
    asker = await who(services, update)
    shown = settings_html(services.generation, asker.model, asker.temperature, asker.length, asker.lang)
    await reply_html(update.effective_message, text(asker.lang, "settings_title", settings=shown))


async def on_temp(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/temp shows the temperature with presets; /temp 0.7 (or 0,7) sets it; junk changes nothing."""
    message = update.effective_message
    if message is None:
        return
    services = services_of(context)
    asker = await who(services, update)
    lang, argument = asker.lang, command_argument(message)
    if not argument:
        await reply_html(
            message,
            temperature_text(services, asker),
            reply_markup=kb.temperature_keyboard(asker.temperature),
        )
        return
    value = parse_temperature(argument)
    if value is None:
        precise = too_precise(argument)
        body = (
            text(lang, "temp_too_precise", decimals=TEMPERATURE_DECIMALS, command="/temp")
            if precise
            else text(lang, "temp_bad", command="/temp")
        )
        await reply_html(message, body)
        return
    await save_temperature(services, asker.user_id, value)
    await reply_html(message, text(lang, "temp_set", value=format_temperature(value)))


def temperature_text(services: Services, asker: Who) -> str:
    """The /temp message's text for these settings."""
    _, unit = unit_of(services.generation, asker.model, asker.lang)
    return text(asker.lang, "temp_show", value=format_temperature(asker.temperature), unit=unit)


async def save_temperature(services: Services, user_id: int, value: float) -> None:
    """Store a user's temperature."""
    await services.db.run(partial(repo.set_user_temperature, user_id=user_id, temperature=value))


async def on_length(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/length shows the sample length for the current model's level; /length N sets it within
    that level's bounds (characters and words are kept apart)."""
    message = update.effective_message
    if message is None:
        return
    services = services_of(context)
    asker = await who(services, update)
    lang, argument, level = asker.lang, command_argument(message), asker.level
    _, unit = unit_of(services.generation, asker.model, lang)
    low, high = length_bounds(level)
    if not argument:
        await reply_html(
            message, text(lang, "length_show", value=asker.length, unit=unit, low=low, high=high)
        )
        return
    value = parse_length(argument, level)
    if value is None:
        await reply_html(
            message,
            text(lang, "length_bad", low=low, high=high, example=default_length(level), command="/length"),
        )
        return
    await services.db.run(partial(repo.set_user_length, user_id=asker.user_id, level=level, length=value))
    await reply_html(message, text(lang, "length_set", value=value, unit=unit))


async def on_model(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/model lists the loaded models with buttons; /model NAME switches."""
    message = update.effective_message
    if message is None:
        return
    services = services_of(context)
    asker = await who(services, update)
    argument = command_argument(message)
    if argument:
        if argument not in services.generation.generators:
            await reply_html(message, text(asker.lang, "model_bad", name=escape(argument[:64])))
            return
        await reply_html(message, await save_model(services, asker.user_id, argument, asker.lang))
        return
    body, markup = model_view(services, asker.model, asker.lang)
    await reply_html(message, body, reply_markup=markup)


def model_view(services: Services, current: str, lang: str) -> tuple[str, InlineKeyboardMarkup]:
    """The /model message: every loaded model, the user's marked ✓, and a button for each."""
    lines = []
    for info in services.generation.models():
        unit = text(lang, "unit_char" if info.level == "char" else "unit_word")
        lines.append(
            text(
                lang,
                "model_line",
                mark="✓" if info.name == current else "•",
                name=info.name,
                language=text(lang, f"lang_{'zh' if info.language == 'zh' else 'en'}"),
                unit=unit,
                corpus=f" · {escape(corpus_line(lang, info.corpus))}" if info.corpus else "",
            )
        )
    names = [info.name for info in services.generation.models()]
    return text(lang, "model_list", models="\n".join(lines)), kb.model_keyboard(names, current)


async def save_model(services: Services, user_id: int, name: str, lang: str) -> str:
    """Store a user's model choice; returns the confirmation to show."""
    # Stored by name even when it is the default: a default also depends on the user's
    # Telegram language, and an explicit choice must not follow it.
    await services.db.run(partial(repo.set_user_model, user_id=user_id, model_name=name))
    info = services.generation.info(name)
    return text(
        lang, "model_set", name=name, language=text(lang, f"lang_{'zh' if info.language == 'zh' else 'en'}")
    )


def _shows_presser_settings(press: Press, kind: type) -> bool:
    """Whether the pressed message is a settings message (/temp, /model: every button of that
    kind) showing the presser's own settings: in a private chat always; in a group only when it
    answers the presser's own command (it quotes it)."""
    message = press.message
    if message is None or message.reply_markup is None:
        return False
    buttons = [b for row in message.reply_markup.inline_keyboard for b in row]
    if not all(isinstance(kb.parse(str(b.callback_data)), kind) for b in buttons):
        return False  # e.g. a sample's "switch model" button: the sample stays as it is
    if message.chat.type == "private":
        return True
    asked: Message | None = message.reply_to_message
    return (
        asked is not None and asked.from_user is not None and asked.from_user.id == press.query.from_user.id
    )


async def on_temperature_press(press: Press) -> None:
    """A temperature preset: set it and redraw the presser's own /temp message."""
    action = press.action
    assert isinstance(action, kb.SetTemperature)
    asker = await who(press.services, press.update)
    await save_temperature(press.services, asker.user_id, action.value)
    await press.answer(_plain(text(press.lang, "temp_set", value=format_temperature(action.value))))
    if press.message is not None and _shows_presser_settings(press, kb.SetTemperature):
        asker = replace(asker, temperature=action.value)
        body = temperature_text(press.services, asker)
        await edit_html(press.message, body, kb.temperature_keyboard(action.value))


async def on_model_press(press: Press) -> None:
    """A model button (/model, or "switch to" under a sample in the other script)."""
    action = press.action
    assert isinstance(action, kb.SetModel)
    if action.name not in press.services.generation.generators:
        await press.refuse()
        return
    asker = await who(press.services, press.update)
    confirmation = await save_model(press.services, asker.user_id, action.name, press.lang)
    await press.answer(_plain(confirmation))
    if press.message is not None and _shows_presser_settings(press, kb.SetModel):
        await edit_html(press.message, *model_view(press.services, action.name, press.lang))
