"""Buttons and rating commands: 👍/👎, again, /rate sessions, /top, /mystats, /forget, /stats."""

from __future__ import annotations

import html
import logging
import time
from dataclasses import dataclass, replace
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot import keyboards as kb
from bot.db import repository as repo
from bot.db.models import StoredSample
from bot.handlers.common import (
    PARSE_MODE,
    default_model_for,
    display_name,
    lang_of,
    load_who,
    reply_html,
    stored_sample_html,
    telegram_call,
    who,
)
from bot.handlers.generate import command_argument, continue_seed, refusal_of
from bot.handlers.settings import model_view, save_model, save_temperature, temperature_view
from bot.parsing import format_temperature
from bot.render import excerpt
from bot.services import Services, services_of
from bot.texts import text

log = logging.getLogger(__name__)

TOP_DEFAULT, TOP_MAX = 5, 10


async def _toast(query: CallbackQuery, message: str) -> None:
    """Answer a callback query; a query answered twice or too old is not worth an error."""
    try:
        await telegram_call(lambda: query.answer(message), idempotent=True)
    except TelegramError as exc:
        log.debug("could not answer a callback query: %s", exc)


async def _edit_markup(query: CallbackQuery, markup: InlineKeyboardMarkup | None) -> None:
    if not isinstance(query.message, Message):
        return
    message = query.message
    try:
        await telegram_call(lambda: message.edit_reply_markup(reply_markup=markup), idempotent=True)
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            log.warning("could not update a keyboard: %s", exc)
    except TelegramError as exc:
        log.warning("could not update a keyboard: %s", exc)


def _plain(html_text: str) -> str:
    """A toast shows plain text: the message without its bold tags."""
    return html.unescape(html_text.replace("<b>", "").replace("</b>", ""))


def _presser_owns(query: CallbackQuery) -> bool:
    """Whether a settings message (/temp, /model) shows the presser's own settings: in a private
    chat always; in a group only when it answers the presser's own command (it quotes it)."""
    message = query.message
    if not isinstance(message, Message):
        return False
    if message.chat.type == "private":
        return True
    asked = message.reply_to_message
    return asked is not None and asked.from_user is not None and asked.from_user.id == query.from_user.id


async def _redraw(query: CallbackQuery, body: str, markup: InlineKeyboardMarkup) -> None:
    """Replace a settings message's text and buttons with the presser's new settings."""
    if not isinstance(query.message, Message):
        return
    message = query.message
    try:
        await telegram_call(
            lambda: message.edit_text(body, parse_mode=PARSE_MODE, reply_markup=markup), idempotent=True
        )
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            log.warning("could not redraw a settings message: %s", exc)
    except TelegramError as exc:
        log.warning("could not redraw a settings message: %s", exc)


@dataclass(frozen=True)
class Origin:
    """Where a press came from, as Telegram reports it (the client only chooses the data)."""

    chat_id: int | None
    private: bool
    message_id: int | None
    inline_message_id: str | None
    carries_button: bool  # the message's keyboard has a button with exactly this data


def origin_of(query: CallbackQuery) -> Origin:
    """The chat, message or inline message a press came from."""
    message = query.message
    if isinstance(message, Message):
        carries = kb.has_button(message.reply_markup, query.data or "")
        return Origin(message.chat.id, message.chat.type == "private", message.message_id, None, carries)
    if message is not None:  # inaccessible (too old): its chat and id are known, its keyboard is not
        return Origin(message.chat.id, message.chat.type == "private", message.message_id, None, False)
    return Origin(None, False, None, query.inline_message_id, False)


def press_allowed(origin: Origin, found: repo.SampleOrigin) -> bool:
    """Whether a press naming this sample may act on it.

    Allowed: the press came from the sample's own message (in its chat, or its inline message);
    or from a bot message carrying exactly this button in the sample's chat (a /rate session in
    a group); or from one in a private chat while the sample is shared (a /rate session there).
    """
    sample = found.sample
    if origin.inline_message_id is not None:
        return sample.inline_message_id is not None and sample.inline_message_id == origin.inline_message_id
    if origin.chat_id is None:
        return False
    if origin.chat_id == found.chat_telegram_id and origin.message_id == sample.telegram_message_id:
        return True
    if not origin.carries_button:
        return False
    return origin.chat_id == found.chat_telegram_id or (sample.shared and origin.private)


def _on_own_message(query: CallbackQuery) -> bool:
    """Buttons that name no sample must come from a bot message carrying exactly that button."""
    return isinstance(query.message, Message) and kb.has_button(query.message.reply_markup, query.data or "")


async def on_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every inline button press comes through here, and every one gets an answer."""
    query = update.callback_query
    if query is None:
        return
    lang = lang_of(update)
    action = kb.parse(query.data)
    names_sample = isinstance(action, kb.Rate | kb.Again | kb.Share)
    # Data that is not on the message's own keyboard is forged; a press without an accessible
    # message may name a sample only (checked against the sample's message below).
    needs_button = isinstance(query.message, Message) or not names_sample
    if action is None or (needs_button and not _on_own_message(query)):
        await _toast(query, text(lang, "button_invalid"))
        return
    services = services_of(context)
    origin = origin_of(query)
    if isinstance(action, kb.Rate):
        await _rate(services, update, query, action, origin, lang)
    elif isinstance(action, kb.Again):
        await _again(services, update, context, query, action, origin, lang)
    elif isinstance(action, kb.Share):
        await _share(services, update, query, action, origin, lang)
    elif isinstance(action, kb.NextToRate):
        await _toast(query, "")
        await show_unrated(update, context)
    elif isinstance(action, kb.SetTemperature):
        presser = await who(services, update)
        await save_temperature(services, presser.user_id, action.value)
        await _toast(query, _plain(text(lang, "temp_set", value=format_temperature(action.value))))
        if _presser_owns(query):
            await _redraw(
                query, *temperature_view(services, replace(presser.settings, temperature=action.value), lang)
            )
    elif isinstance(action, kb.SetModel):
        if action.name not in services.generation.generators:
            await _toast(query, text(lang, "button_invalid"))
            return
        presser = await who(services, update)
        confirmation = await save_model(services, presser.user_id, action.name, lang)
        await _toast(query, _plain(confirmation))
        if _presser_owns(query):
            await _redraw(query, *model_view(services, action.name, lang))
    elif isinstance(action, kb.Forget):
        await _forget(services, update, query, action, lang)


async def _rate(
    services: Services, update: Update, query: CallbackQuery, action: kb.Rate, origin: Origin, lang: str
) -> None:
    """Toggle the presser's rating; the same update delivered twice counts once."""
    assert update.effective_user
    tg_user = update.effective_user

    async def work(session: AsyncSession) -> repo.RatingState | str:
        found = await repo.get_sample_origin(session, sample_id=action.sample_id)
        if found is None:
            return "gone"
        if not press_allowed(origin, found):
            return "invalid"
        if not await repo.claim_update(session, update_id=update.update_id):
            return "duplicate"
        user = await repo.get_or_create_user(
            session,
            telegram_id=tg_user.id,
            display_name=display_name(tg_user),
            language_code=tg_user.language_code,
        )
        return await repo.toggle_rating(
            session, sample_id=action.sample_id, user_id=user.id, score=action.score
        )

    state = await services.db.run(work)
    if state == "duplicate":  # answered all the same: the first handling may not have managed to
        await _toast(query, text(lang, "rating_same"))
        return
    if state == "invalid":
        await _toast(query, text(lang, "button_invalid"))
        return
    if state == "gone" or not isinstance(state, repo.RatingState):
        await _toast(query, text(lang, "sample_gone"))
        return
    services.counters.ratings += 1
    key = "rating_withdrawn" if state.score is None else ("rated_up" if state.score > 0 else "rated_down")
    await _toast(query, text(lang, key))
    if isinstance(query.message, Message) and query.message.reply_markup is not None:
        await _edit_markup(
            query,
            kb.with_votes(query.message.reply_markup, action.sample_id, state.votes.up, state.votes.down),
        )


async def _again(
    services: Services,
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    query: CallbackQuery,
    action: kb.Again,
    origin: Origin,
    lang: str,
) -> None:
    """Same seed and settings as a stored sample, new draw, sent as a new message."""

    async def work(session: AsyncSession) -> tuple[str, str]:
        found = await repo.get_sample_origin(session, sample_id=action.sample_id)
        if found is None:
            return "gone", ""
        return ("ok" if press_allowed(origin, found) else "invalid"), found.sample.seed

    verdict, seed = await services.db.run(work, write=False)
    if verdict == "gone":
        await _toast(query, text(lang, "sample_gone"))
        return
    if verdict == "invalid" or update.effective_chat is None:  # no chat to send a new sample to
        await _toast(query, text(lang, "button_invalid"))
        return
    # A refused press (still writing, too fast) is told in the toast only, never in the chat.
    refused = await refusal_of(services, update, request=update.update_id)
    await _toast(query, refused or "")
    if refused:
        return
    reply_to = query.message if isinstance(query.message, Message) else None
    await continue_seed(update, context, seed, reply_to=reply_to, settings_from=action.sample_id, quiet=True)


async def _share(
    services: Services, update: Update, query: CallbackQuery, action: kb.Share, origin: Origin, lang: str
) -> None:
    """Share or unshare a sample: only its author, only from the sample's own message."""
    assert update.effective_user
    presser = update.effective_user.id

    async def work(session: AsyncSession) -> str:
        found = await repo.get_sample_origin(session, sample_id=action.sample_id)
        if found is None:
            return "sample_gone"
        own_message = origin.chat_id == found.chat_telegram_id or origin.inline_message_id is not None
        if not (own_message and press_allowed(origin, found)):
            return "button_invalid"
        if found.author_telegram_id != presser:
            return "share_not_author"
        await repo.set_shared(session, sample_id=action.sample_id, shared=action.shared)
        return "shared_done" if action.shared else "unshared_done"

    key = await services.db.run(work)
    await _toast(query, text(lang, key))
    if key in ("shared_done", "unshared_done") and isinstance(query.message, Message):
        markup = query.message.reply_markup
        if markup is not None:
            await _edit_markup(query, kb.with_share(markup, action.sample_id, action.shared, lang))


async def show_unrated(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/rate: a stored sample this user has not rated yet, fewest ratings first, with "next"."""
    services = services_of(context)
    assert update.effective_user and update.effective_chat
    tg_user, tg_chat = update.effective_user, update.effective_chat
    lang = lang_of(update)
    private = tg_chat.type == "private"

    async def work(session: AsyncSession) -> StoredSample | None:
        user, chat, _ = await load_who(
            session,
            tg_user,
            tg_chat,
            default_model=default_model_for(services.generation, tg_user.language_code),
        )
        # In a group, that group's samples; in a private chat, the samples people shared.
        return await repo.pick_unrated_sample(session, user_id=user.id, chat_id=None if private else chat.id)

    sample = await services.db.run(work)
    target = update.effective_message
    if sample is None:
        await reply_html(target, text(lang, "rate_none" if private else "rate_none_group"))
        return
    body = stored_sample_html(services.generation, sample, lang, [text(lang, "rate_intro")])
    markup = kb.rating_keyboard(sample.id, sample.up_votes, sample.down_votes, lang, with_next=True)
    if target is not None:
        await reply_html(target, body, reply_markup=markup)
    else:
        try:
            await telegram_call(
                lambda: context.bot.send_message(tg_chat.id, body, parse_mode="HTML", reply_markup=markup)
            )
        except TelegramError as exc:
            log.warning("could not send the next sample to rate: %s", exc)


async def on_rate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/rate."""
    await show_unrated(update, context)


async def on_top(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/top [N]: best-rated samples in this group; in a private chat, the user's own and shared ones."""
    services = services_of(context)
    message = update.effective_message
    if message is None or update.effective_chat is None or update.effective_user is None:
        return
    lang = lang_of(update)
    argument = command_argument(message)
    limit = TOP_DEFAULT
    if argument:
        if not (argument.isascii() and argument.isdigit() and 1 <= int(argument) <= TOP_MAX):
            await reply_html(message, text(lang, "top_bad"))
            return
        limit = int(argument)
    tg_chat = update.effective_chat
    private = tg_chat.type == "private"

    tg_user_id = update.effective_user.id

    async def work(session: AsyncSession) -> list[tuple[int, int, str, str]]:
        if private:  # the user's own samples (from any chat) and shared ones
            user = await repo.get_user(session, telegram_id=tg_user_id)
            rows = await repo.top_samples(session, visible_to=user.id if user else None, limit=limit)
        else:  # this group's samples only
            chat = await repo.get_chat(session, telegram_id=tg_chat.id)
            if chat is None:
                return []
            rows = await repo.top_samples(session, chat_id=chat.id, limit=limit)
        return [(s.up_votes, s.down_votes, s.seed, s.text) for s in rows]

    rows = await services.db.run(work, write=False)
    if not rows:
        await reply_html(message, text(lang, "top_none"))
        return
    where = "" if private else text(lang, "top_where_chat")
    lines = [text(lang, "top_title", where=where)]
    for rank, (up, down, seed, body) in enumerate(rows, start=1):
        lines.append(
            text(
                lang,
                "top_line",
                rank=rank,
                up=up,
                down=down,
                seed=html.escape(excerpt(seed, 60)),
                # excerpt() trims both ends: put back the space that joined seed and continuation
                text=(" " if seed[-1:].isspace() or body[:1].isspace() else "")
                + html.escape(excerpt(body, 200)),
            )
        )
    await reply_html(message, "\n\n".join(lines))


async def on_mystats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/mystats: the user's own numbers."""
    services = services_of(context)
    assert update.effective_user and update.effective_chat
    tg_user, tg_chat = update.effective_user, update.effective_chat

    async def work(session: AsyncSession) -> repo.UserStats:
        user, _, _ = await load_who(
            session,
            tg_user,
            tg_chat,
            default_model=default_model_for(services.generation, tg_user.language_code),
        )
        return await repo.user_stats(session, user_id=user.id)

    stats = await services.db.run(work)
    lang = lang_of(update)
    body = text(
        lang,
        "mystats",
        samples=stats.samples,
        given=stats.ratings_given,
        up=stats.up_received,
        down=stats.down_received,
    )
    await reply_html(update.effective_message, body)


async def on_forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/forget: ask first; the answer buttons only work for the user who asked."""
    if update.effective_user is None:
        return
    lang = lang_of(update)
    services = services_of(context)
    telegram_id = update.effective_user.id
    known = await services.db.run(partial(repo.get_user, telegram_id=telegram_id), write=False)
    if known is None:  # nothing to delete: no need to ask
        await reply_html(update.effective_message, text(lang, "forget_nothing"))
        return
    markup = kb.forget_keyboard(lang, telegram_id)
    await reply_html(update.effective_message, text(lang, "forget_ask"), reply_markup=markup)


async def _forget(
    services: Services, update: Update, query: CallbackQuery, action: kb.Forget, lang: str
) -> None:
    assert update.effective_user
    if action.telegram_id != update.effective_user.id:
        await _toast(query, text(lang, "button_invalid"))
        return
    await _toast(query, "")
    if not action.confirmed:
        body = text(lang, "forget_cancelled")
    else:
        result = await services.db.run(partial(repo.forget_user, telegram_id=update.effective_user.id))
        body = (
            text(lang, "forget_done", samples=result.samples_deleted, ratings=result.ratings_deleted)
            if result.found
            else text(lang, "forget_nothing")
        )
    if isinstance(query.message, Message):
        try:
            prompt = query.message
            await telegram_call(lambda: prompt.edit_text(body, parse_mode="HTML"), idempotent=True)
        except TelegramError as exc:
            log.warning("could not edit the /forget prompt: %s", exc)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


async def on_stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stats for admins: users, samples, ratings, queue, latency percentiles, uptime."""
    services = services_of(context)
    lang = lang_of(update)
    if update.effective_user is None or update.effective_user.id not in services.settings.admin_user_ids:
        await reply_html(update.effective_message, text(lang, "admin_only"))
        return
    stats = await services.db.run(repo.admin_stats, write=False)
    latency = services.generation.latency_percentiles()

    def ms(p: float) -> str:
        return f"{latency[p] * 1000:.0f}" if p in latency else "-"

    body = text(
        lang,
        "stats",
        users=stats.users,
        samples=stats.samples,
        last24=stats.samples_last_24h,
        ratings=stats.ratings,
        up=stats.up_votes,
        down=stats.down_votes,
        replica=html.escape(services.settings.replica_id),  # queue and latency are this replica's
        queue=services.generation.queue_depth,
        p50=ms(50),
        p90=ms(90),
        p99=ms(99),
        uptime=_duration(time.time() - services.counters.started),
    )
    await reply_html(update.effective_message, body)
