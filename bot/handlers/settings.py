"""/start, /help, /temp, /length, /model, /settings and their buttons."""

from __future__ import annotations

import html
from functools import partial

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.ext import ContextTypes

from bot.db import repository as repo
from bot.handlers.common import display_name, lang_of, reply_html, settings_text, unit_of, who
from bot.handlers.generate import command_argument
from bot.keyboards import model_keyboard, temperature_keyboard
from bot.parsing import effective_length, format_temperature, parse_length, parse_temperature, too_precise
from bot.services import Services, services_of
from bot.texts import command_list, text
from core.limits import TEMPERATURE_DECIMALS, default_length, length_bounds

SettingCommand = tuple[Services, Message, str, str, int, repo.GenerationSettings]


async def _setting_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> SettingCommand | None:
    """What /temp, /length and /model start from: services, message, language, the argument
    after the command, and the stored user with the settings in this chat."""
    message = update.effective_message
    if message is None:
        return None
    services = services_of(context)
    asker = await who(services, update)
    return services, message, asker.lang, command_argument(message), asker.user_id, asker.settings


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Welcome: what the bot does, the current settings and the commands."""
    services = services_of(context)
    if update.effective_user is None:
        return
    lang = lang_of(update)
    settings = (await who(services, update)).settings
    _, unit = unit_of(services.generation, settings.model_name, lang)
    await reply_html(
        update.effective_message,
        text(
            lang,
            "welcome",
            name=html.escape(display_name(update.effective_user)),
            unit=unit,
            settings=settings_text(services.generation, settings, lang),
            commands=command_list(lang),
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
    said = text(lang, "unknown_command", command=html.escape(typed, quote=False))
    await reply_html(message, said + "\n\n" + text(lang, "help", commands=command_list(lang)))


async def on_settings(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The user's current settings."""
    services = services_of(context)
    lang = lang_of(update)
    settings = (await who(services, update)).settings
    body = text(lang, "settings_title", settings=settings_text(services.generation, settings, lang))
    await reply_html(update.effective_message, body)


async def on_temp(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/temp shows the temperature with presets; /temp 0.7 (or 0,7) sets it; junk changes nothing."""
    asked = await _setting_command(update, context)
    if asked is None:
        return
    services, message, lang, argument, user_id, settings = asked
    if not argument:
        body, markup = temperature_view(services, settings, lang)
        await reply_html(message, body, reply_markup=markup)
        return
    value = parse_temperature(argument)
    if value is None:
        precise = too_precise(argument)
        body = (
            text(lang, "temp_too_precise", decimals=TEMPERATURE_DECIMALS)
            if precise
            else text(lang, "temp_bad")
        )
        await reply_html(message, body)
        return
    await save_temperature(services, user_id, value)
    await reply_html(message, text(lang, "temp_set", value=format_temperature(value)))


def temperature_view(
    services: Services, settings: repo.GenerationSettings, lang: str
) -> tuple[str, InlineKeyboardMarkup]:
    """The /temp message for these settings: the current value and the preset buttons."""
    _, unit = unit_of(services.generation, settings.model_name, lang)
    body = text(lang, "temp_show", value=format_temperature(settings.temperature), unit=unit)
    return body, temperature_keyboard(settings.temperature)


async def save_temperature(services: Services, user_id: int, value: float) -> None:
    """Store a user's temperature."""
    await services.db.run(partial(repo.set_user_temperature, user_id=user_id, temperature=value))


async def on_length(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/length shows the sample length; /length N sets it within the model level's bounds."""
    asked = await _setting_command(update, context)
    if asked is None:
        return
    services, message, lang, argument, user_id, settings = asked
    level, unit = unit_of(services.generation, settings.model_name, lang)
    low, high = length_bounds(level)
    if not argument:
        current = effective_length(settings.length, level)
        await reply_html(message, text(lang, "length_show", value=current, unit=unit, low=low, high=high))
        return
    value = parse_length(argument, level)
    if value is None:
        body = text(lang, "length_bad", low=low, high=high, example=default_length(level))
        await reply_html(message, body)
        return
    await services.db.run(partial(repo.set_user_length, user_id=user_id, length=value))
    await reply_html(message, text(lang, "length_set", value=value, unit=unit))


async def on_model(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/model lists the loaded models with buttons; /model NAME switches."""
    asked = await _setting_command(update, context)
    if asked is None:
        return
    services, message, lang, argument, user_id, settings = asked
    current = services.generation.resolve(settings.model_name)
    if argument:
        if argument not in services.generation.generators:
            await reply_html(message, text(lang, "model_bad", name=html.escape(argument[:64])))
            return
        await reply_html(message, await save_model(services, user_id, argument, lang))
        return
    body, markup = model_view(services, current, lang)
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
                corpus=f" ({html.escape(info.corpus)})" if info.corpus else "",
            )
        )
    names = [info.name for info in services.generation.models()]
    return text(lang, "model_list", models="\n".join(lines)), model_keyboard(names, current)


async def save_model(services: Services, user_id: int, name: str, lang: str) -> str:
    """Store a user's model choice; returns the confirmation to show."""
    # Stored by name even when it is the default: a default also depends on the user's
    # Telegram language, and an explicit choice must not follow it.
    await services.db.run(partial(repo.set_user_model, user_id=user_id, model_name=name))
    info = services.generation.info(name)
    return text(
        lang, "model_set", name=name, language=text(lang, f"lang_{'zh' if info.language == 'zh' else 'en'}")
    )
