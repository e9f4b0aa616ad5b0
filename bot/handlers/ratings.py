"""Ratings and what is built on them: 👍/👎 and 🌐 presses, /rate, /top, /mystats, /forget, /stats."""

from __future__ import annotations

import logging
import time
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot import keyboards as kb
from bot.calls import edit_html, edit_markup, reply_html, telegram_call
from bot.db import repository as repo
from bot.db.models import StoredSample
from bot.handlers.presses import Press, sample_press_allowed
from bot.message_text import command_argument
from bot.render import escape, excerpt, stored_sample_html
from bot.services import Services, services_of
from bot.texts import language_of, text
from bot.who import Seen, lang_of, store_user_and_chat, who

log = logging.getLogger(__name__)

TOP_DEFAULT, TOP_MAX = 5, 10


async def on_rate_press(press: Press) -> None:
    """👍/👎: toggle the presser's rating; the same update delivered twice counts once. The
    counts are refreshed on the pressed message and on the sample's own message in that chat."""
    action = press.action
    assert isinstance(action, kb.Rate)
    tg_user = press.query.from_user
    found_origin: list[repo.SampleOrigin] = []

    async def work(session: AsyncSession) -> repo.RatingState | str:
        found = await repo.get_sample_origin(session, sample_id=action.sample_id)
        if found is None:
            return "sample_gone"
        if not sample_press_allowed(press, found):
            return "button_invalid"
        if not await repo.claim_update(session, update_id=press.update.update_id):
            return "rating_same"  # answered all the same: the first handling may not have managed to
        user, _ = await store_user_and_chat(session, Seen.of(tg_user, None))
        found_origin.append(found)
        return await repo.toggle_rating(
            session, sample_id=action.sample_id, user_id=user.id, score=action.score
        )

    state = await press.services.db.run(work)
    if not isinstance(state, repo.RatingState):
        await press.answer(text(press.lang, state))
        return
    press.services.counters.ratings += 1
    key = "rating_withdrawn" if state.score is None else ("rated_up" if state.score > 0 else "rated_down")
    await press.answer(text(press.lang, key))
    message = press.message
    if message is not None and message.reply_markup is not None:
        await edit_markup(
            message, kb.with_votes(message.reply_markup, action.sample_id, state.votes.up, state.votes.down)
        )
    found = found_origin[-1]
    own_id = found.sample.telegram_message_id
    if (
        own_id is not None
        and press.origin.chat_id == found.chat_telegram_id
        and press.origin.message_id != own_id
    ):
        await refresh_sample_message(press.context.bot, press.services, found.chat_telegram_id, own_id)


async def refresh_sample_message(bot: Bot, services: Services, chat_id: int, message_id: int) -> None:
    """Redraw the counts on a sample's own message (a rating came through a /rate copy)."""

    async def work(session: AsyncSession) -> list[tuple[StoredSample, str | None]]:
        return await repo.samples_of_message(session, chat_telegram_id=chat_id, message_id=message_id)

    samples = await services.db.run(work, write=False)
    if not samples:
        return
    if len(samples) == 1:
        sample, code = samples[0]
        markup = kb.rating_keyboard(
            sample.id,
            sample.up_votes,
            sample.down_votes,
            language_of(code),
            shared=sample.shared,
            duel=not sample.acrostic,
        )
    else:  # a /compare message: one row of counts per part
        markup = kb.compare_keyboard([(s.temperature, s.id, s.up_votes, s.down_votes) for s, _ in samples])
    try:
        await telegram_call(
            lambda: bot.edit_message_reply_markup(chat_id, message_id, reply_markup=markup), idempotent=True
        )
    except TelegramError as exc:  # best effort: the rating itself is stored
        log.info("could not refresh the counts of message %s: %s", message_id, exc)


async def on_share_press(press: Press) -> None:
    """🌐/🔒: share or unshare a sample: only its author, only from the sample's own message."""
    action = press.action
    assert isinstance(action, kb.Share)
    presser = press.query.from_user.id

    async def work(session: AsyncSession) -> str:
        found = await repo.get_sample_origin(session, sample_id=action.sample_id)
        if found is None:
            return "sample_gone"
        sample = found.sample
        own = press.carried_by(
            found.chat_telegram_id, sample.telegram_message_id or -1, sample.inline_message_id
        )
        if not (own or (press.origin.chat_id == found.chat_telegram_id and press.origin.carries_button)):
            return "button_invalid"
        if found.author_telegram_id != presser:
            return "share_not_author"
        await repo.set_shared(session, sample_id=action.sample_id, shared=action.shared)
        return "shared_done" if action.shared else "unshared_done"

    key = await press.services.db.run(work)
    await press.answer(text(press.lang, key))
    message = press.message
    if key in ("shared_done", "unshared_done") and message is not None and message.reply_markup is not None:
        await edit_markup(
            message, kb.with_share(message.reply_markup, action.sample_id, action.shared, press.lang)
        )


async def on_next_press(press: Press) -> None:
    """⏭ in a /rate session: the next sample, never the one just shown while there is another."""
    action = press.action
    assert isinstance(action, kb.NextToRate)
    # Both taps of a double tap see the message with its ⏭ and would find the same next
    # sample: the first one sends it (newcomer pass: it came twice).
    if not press.services.next_presses.allow((press.origin.chat_id, press.origin.message_id)):
        await press.answer(text(press.lang, "next_already"))
        return
    await press.answer()
    await show_unrated(press.update, press.context, after_id=action.after_id)


async def on_forget_press(press: Press) -> None:
    """The /forget confirmation: only the user who asked may answer it."""
    action = press.action
    assert isinstance(action, kb.Forget)
    presser = press.query.from_user.id
    if action.telegram_id != presser:
        await press.answer(text(press.lang, "forget_not_yours"))
        return
    await press.answer()
    if not action.confirmed:
        body = text(press.lang, "forget_cancelled")
    else:
        result = await press.services.db.run(partial(repo.forget_user, telegram_id=presser))
        body = (
            text(press.lang, "forget_done", samples=result.samples_deleted, ratings=result.ratings_deleted)
            if result.found
            else text(press.lang, "forget_nothing")
        )
    if press.message is not None:
        await edit_html(press.message, body, None)


async def show_unrated(
    update: Update, context: ContextTypes.DEFAULT_TYPE, *, after_id: int | None = None
) -> None:
    """/rate: a stored sample this user has not rated yet, fewest ratings first, with "next"."""
    services = services_of(context)
    asker = await who(services, update)
    chat = update.effective_chat
    if chat is None or asker.chat_id is None:
        return
    private = chat.type == "private"

    async def work(session: AsyncSession) -> StoredSample | None:
        # In a group, that group's samples; in a private chat, the samples people shared.
        return await repo.pick_unrated_sample(
            session, user_id=asker.user_id, chat_id=None if private else asker.chat_id, after_id=after_id
        )

    sample = await services.db.run(work, write=False)
    lang = asker.lang
    target = update.effective_message
    if sample is None:
        body, markup = text(lang, "rate_none" if private else "rate_none_group"), None
    else:
        body = stored_sample_html(services.generation, sample, lang, [text(lang, "rate_intro")])
        markup = kb.rating_keyboard(sample.id, sample.up_votes, sample.down_votes, lang, with_next=True)
    if target is not None and target.from_user is not None and not target.from_user.is_bot:
        await reply_html(target, body, reply_markup=markup)
        return
    await _send_to_chat(context.bot, chat.id, body, markup)


async def _send_to_chat(bot: Bot, chat_id: int, body: str, markup: InlineKeyboardMarkup | None) -> None:
    try:
        await telegram_call(lambda: bot.send_message(chat_id, body, parse_mode="HTML", reply_markup=markup))
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
                seed=escape(excerpt(seed, 60)),
                # excerpt() trims both ends: put back the space that joined seed and continuation
                text=(" " if seed[-1:].isspace() or body[:1].isspace() else "") + escape(excerpt(body, 200)),
            )
        )
    await reply_html(message, "\n\n".join(lines))


async def on_mystats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/mystats: the user's own numbers."""
    services = services_of(context)
    asker = await who(services, update)
    stats = await services.db.run(partial(repo.user_stats, user_id=asker.user_id), write=False)
    lang = asker.lang
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
        replica=escape(services.settings.replica_id),  # queue and latency are this replica's
        queue=services.generation.queue_depth,
        p50=ms(50),
        p90=ms(90),
        p99=ms(99),
        uptime=_duration(time.time() - services.counters.started),
    )
    await reply_html(update.effective_message, body)
