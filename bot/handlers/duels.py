"""/duel and its buttons: two hidden arms continue one seed as A and B; people vote.

An arm is (model, temperature). Arms are the loaded models of the seed's language (the
user's model's language) times Settings.duel_temperatures; each duel takes the pair with
the fewest counted votes so far, so the leaderboard's comparisons stay balanced. The voter
learns which arm was which in the answer to their press; the message never tells, so later
voters are not swayed.
"""

from __future__ import annotations

import asyncio
import html
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import CallbackQuery, Message, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot import keyboards as kb
from bot.db import duels as dr
from bot.db import repository as repo
from bot.generation import QueueFullError, ServiceClosedError
from bot.handlers.common import default_model_for, display_name, lang_of, load_who, reply_html, telegram_call
from bot.handlers.generate import COMPARE_LENGTH, command_argument, refusal_of, storable
from bot.handlers.ratings import origin_of, press_allowed
from bot.parsing import effective_length, format_temperature
from bot.ranking import Outcome
from bot.render import excerpt, shown_seed
from bot.services import Services, services_of
from bot.texts import text
from core.generator import Request

log = logging.getLogger(__name__)

DUEL_COST = 2  # two generations, charged like two /gen
SEED_SHOWN = 200  # the seed is shown twice, so shorter than in a single sample


async def _toast(query: CallbackQuery, message: str) -> None:
    """Answer a press (every press gets one); a late or repeated answer is not worth an error."""
    try:
        await telegram_call(lambda: query.answer(message[:200]), idempotent=True)
    except TelegramError as exc:
        log.debug("could not answer a callback query: %s", exc)


def arm_text(arm: dr.Arm) -> str:
    """How an arm is revealed to a voter: "tiny-char at T=0.5"."""
    return f"{arm.model} T={format_temperature(arm.temperature)}"


@dataclass(frozen=True)
class _Plan:
    user_id: int
    chat_id: int
    private: bool
    seed: str
    length: int
    a: dr.Arm
    b: dr.Arm


async def _plan(services: Services, update: Update, seed: str) -> _Plan | None:
    """Store the user and chat, pick the two arms and the seed; None when there is no pair."""
    assert update.effective_user and update.effective_chat
    tg_user, tg_chat = update.effective_user, update.effective_chat
    generation = services.generation
    temperatures = services.settings.duel_temperatures

    async def work(session: AsyncSession) -> tuple[int, int, str, int | None, tuple[dr.Arm, dr.Arm] | None]:
        user, chat, settings = await load_who(
            session, tg_user, tg_chat, default_model=default_model_for(generation, tg_user.language_code)
        )
        model = generation.resolve(settings.model_name)
        language = generation.info(model).language
        names = [info.name for info in generation.models() if info.language == language]
        arms = dr.arms_for(names, temperatures)
        pair = dr.choose_pair(arms, await dr.pair_counts(session)) if len(arms) >= 2 else None
        return user.id, chat.id, model, settings.length, pair

    user_id, chat_id, model, length, pair = await services.db.run(work)
    if pair is None:
        return None
    level = generation.info(model).level
    length = min(effective_length(length, level), COMPARE_LENGTH.get(level, 200))
    if not seed.strip():
        seed = await generation.random_seed_text(model)
    return _Plan(user_id, chat_id, tg_chat.type == "private", seed, length, pair[0], pair[1])


def duel_html(seed: str, text_a: str, text_b: str, lang: str) -> str:
    """The duel message: the seed twice, each with its continuation, no settings."""
    shown = html.escape(excerpt(shown_seed(seed), SEED_SHOWN), quote=False)
    parts = [text(lang, "duel_title")]
    for side, body in (("A", text_a), ("B", text_b)):
        parts.append(text(lang, "duel_part", side=side, seed=shown, text=html.escape(body, quote=False)))
    return "\n\n".join(parts)


async def start_duel(
    update: Update, context: ContextTypes.DEFAULT_TYPE, seed: str, *, reply_to: Message | None
) -> None:
    """The whole flow: limits, arms, two generations, store, send, record the message."""
    services = services_of(context)
    assert update.effective_user
    user_key, lang = update.effective_user.id, lang_of(update)
    refusal = await refusal_of(services, update, DUEL_COST)
    if refusal is None and not await services.limits.begin(user_key):
        refusal = text(lang, "one_at_a_time")  # another request began meanwhile
    if refusal is not None:
        await reply_html(reply_to, refusal)
        return
    try:
        duel_id, body = await _make(services, update, storable(seed), lang)
    finally:
        await services.limits.end(user_key)
    if duel_id is None:
        if body:
            await reply_html(reply_to, body)
        return
    sent = await reply_html(reply_to, body, reply_markup=kb.duel_keyboard(duel_id, lang))
    if sent is None:
        return

    async def record(session: AsyncSession) -> None:
        await dr.set_duel_message(session, duel_id=duel_id, message_id=sent.message_id)

    await services.db.run(record)


async def _make(services: Services, update: Update, seed: str, lang: str) -> tuple[int | None, str]:
    """Generate and store a duel: (its id, its message) or (None, what to say instead)."""
    assert update.effective_user

    async def seen(session: AsyncSession) -> bool:
        return await dr.get_duel_by_update(session, update_id=update.update_id) is not None

    if await services.db.run(seen, write=False):  # a redelivered update: answered already
        return None, ""
    plan = await _plan(services, update, seed)
    if plan is None:
        return None, text(lang, "duel_one_arm")
    generation = services.generation
    sides = [(arm, secrets.randbits(63)) for arm in (plan.a, plan.b)]
    requests = [
        (
            arm,
            Request(
                plan.seed,
                length=effective_length(plan.length, generation.info(arm.model).level),
                temperature=arm.temperature,
                rng=rng,
            ),
        )
        for arm, rng in sides
    ]
    try:
        a, b = await asyncio.gather(*(generation.generate(r, model=arm.model) for arm, r in requests))
    except QueueFullError:
        return None, text(lang, "busy")
    except ServiceClosedError:
        return None, text(lang, "restarting")
    await services.limits.charge(update.effective_user.id, DUEL_COST)

    async def store(session: AsyncSession) -> int:
        duel = await dr.record_duel(
            session,
            user_id=plan.user_id,
            chat_id=plan.chat_id,
            private=plan.private,
            seed=plan.seed,
            length=plan.length,
            a=dr.Side(plan.a, generation.info(plan.a.model).version, sides[0][1], a.text),
            b=dr.Side(plan.b, generation.info(plan.b.model).version, sides[1][1], b.text),
            update_id=update.update_id,
        )
        return duel.id

    duel_id = await services.db.run(store)
    return duel_id, duel_html(plan.seed, a.text, b.text, lang)


# -- entry points ------------------------------------------------------------------------------


async def on_duel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/duel [seed]: no seed picks one from the model's own book, like /gen."""
    message = update.effective_message
    if message is None or update.effective_user is None or update.effective_chat is None:
        return
    await start_duel(update, context, command_argument(message), reply_to=message)


async def on_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Duel presses (votes and 🆚); every one gets an answer."""
    query = update.callback_query
    if query is None:
        return
    lang = lang_of(update)
    action = kb.parse_duel(query.data)
    # The press must come from a bot message carrying exactly this button (else it is forged).
    if action is None or not (
        isinstance(query.message, Message) and kb.has_button(query.message.reply_markup, query.data or "")
    ):
        await _toast(query, text(lang, "button_invalid"))
        return
    services = services_of(context)
    if isinstance(action, kb.StartDuel):
        await _start_from_sample(services, update, context, query, action, lang)
    else:
        await _vote(services, update, query, action, lang)


async def _start_from_sample(
    services: Services,
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    query: CallbackQuery,
    action: kb.StartDuel,
    lang: str,
) -> None:
    """🆚 under a sample: a duel on its seed, checked like any press naming a sample."""
    origin = origin_of(query)

    async def work(session: AsyncSession) -> str | None:
        found = await repo.get_sample_origin(session, sample_id=action.sample_id)
        if found is None or not press_allowed(origin, found):
            return None
        return found.sample.seed

    seed = await services.db.run(work, write=False)
    if seed is None or update.effective_chat is None:
        await _toast(query, text(lang, "button_invalid"))
        return
    await _toast(query, "")
    reply_to = query.message if isinstance(query.message, Message) else None
    await start_duel(update, context, seed, reply_to=reply_to)


async def _vote(
    services: Services, update: Update, query: CallbackQuery, action: kb.DuelVote, lang: str
) -> None:
    """Store or change the presser's verdict; reveal the arms to them alone."""
    assert update.effective_user
    tg_user = update.effective_user
    message = query.message
    assert isinstance(message, Message)
    settings = services.settings

    async def work(session: AsyncSession) -> tuple[str, dr.VoteResult | None, dr.Arm | None, dr.Arm | None]:
        found = await dr.get_duel_origin(session, duel_id=action.duel_id)
        if found is None:
            return "duel_gone", None, None, None
        duel = found.duel
        # Only from the duel's own message, in its own chat (its id may not be recorded yet
        # when the press is quick: the message then carries this very button, checked above).
        own = duel.telegram_message_id in (None, message.message_id)
        if found.chat_telegram_id != message.chat.id or not own:
            return "button_invalid", None, None, None
        user = await repo.get_or_create_user(
            session,
            telegram_id=tg_user.id,
            display_name=display_name(tg_user),
            language_code=tg_user.language_code,
        )
        result = await dr.cast_vote(
            session,
            duel=duel,
            user_id=user.id,
            outcome=Outcome(action.outcome),
            min_delay_s=settings.duel_min_vote_s,
            daily_cap=settings.duel_daily_cap,
        )
        return "ok", result, dr.arm_a(duel), dr.arm_b(duel)

    verdict, result, a, b = await services.db.run(work)
    if result is None or a is None or b is None:
        await _toast(query, text(lang, verdict))
        return
    outcome = text(
        lang, {"a": "duel_a", "b": "duel_b", "tie": "duel_tie", "bad": "duel_bad"}[result.outcome.value]
    )
    key = "duel_changed" if result.changed else "duel_voted"
    toast = text(lang, key, outcome=outcome, arm_a=arm_text(a), arm_b=arm_text(b))
    if result.early:
        toast += text(lang, "duel_early")
    elif result.capped:
        toast += text(lang, "duel_capped")
    await _toast(query, toast)
