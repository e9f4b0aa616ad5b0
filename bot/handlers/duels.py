"""/duel and its buttons: two hidden arms continue one seed as A and B; people vote.

An arm is (model, temperature). Arms are the loaded models of the seed's language (the
user's model's language) times Settings.duel_temperatures; each duel takes the pair with
the fewest counted votes so far, so the leaderboard's comparisons stay balanced.

Duels are blind: nobody learns which arm wrote A or B before casting a vote that counts, and a
vote that counts is final. A vote too fast to count, or beyond the daily cap, reveals nothing
and may be cast again; the answer to a counted vote names both arms, to that voter alone.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Message, Update
from telegram.ext import ContextTypes

from bot import keyboards as kb
from bot.admission import admit
from bot.calls import reply_html
from bot.challengers import after_vote, contest_for, is_contest
from bot.db import repository as repo
from bot.db.models import Duel
from bot.db.outcomes import Outcome
from bot.db.repository import duels as dr
from bot.finishing import asked, finish, keep_whole
from bot.handlers.presses import Press, sample_press_allowed
from bot.message_text import command_argument, storable
from bot.parsing import format_temperature
from bot.render import escape, excerpt, shown_seed
from bot.services import Services, services_of
from bot.texts import text
from bot.who import Seen, Who, store_user_and_chat
from core.generator import Request
from core.limits import COMPARE_LENGTH, capped_length

DUEL_COST = 2  # two generations, charged like two /gen
SEED_SHOWN = 200  # the seed is shown twice, so shorter than in a single sample


def arm_text(arm: dr.Arm) -> str:
    """How an arm is revealed to a voter: "tiny-char T=0.5"."""
    return f"{arm.model} T={format_temperature(arm.temperature)}"


def side_text(duel: Duel, side: str) -> str:
    """How a side is revealed; in a challenger duel with its version ("tiny-char v2 T=0.5")."""
    arm, version = (dr.arm_a(duel), duel.version_a) if side == "a" else (dr.arm_b(duel), duel.version_b)
    if not is_contest(duel):
        return arm_text(arm)
    return f"{arm.model} v{version} T={format_temperature(arm.temperature)}"


@dataclass(frozen=True)
class _Plan:
    seed: str
    length: int
    a: dr.Arm
    b: dr.Arm
    versions: tuple[str, str] | None = None  # a challenger duel: the version of each side


async def _plan(services: Services, asker: Who, seed: str) -> _Plan | None:
    """The two arms (models of the asker's model's language) and the seed; None without a pair.
    A share of the duels on a model with a challenger pits it against its champion instead."""
    generation = services.generation
    length = capped_length(asker.length, asker.level, COMPARE_LENGTH)
    if not seed.strip():
        seed = await generation.random_seed_text(asker.model)
    contest = contest_for(services, asker.model)
    if contest is not None:
        arm = dr.Arm(asker.model, asker.temperature)
        return _Plan(seed, length, arm, arm, (contest.version_a, contest.version_b))
    names = [info.name for info in generation.models() if info.language == asker.language]
    arms = dr.arms_for(names, services.settings.duel_temperatures)
    if len(arms) < 2:
        return None

    async def work(session: AsyncSession) -> tuple[dr.Arm, dr.Arm]:
        return dr.choose_pair(arms, await dr.pair_counts(session))

    a, b = await services.db.run(work, write=False)
    return _Plan(seed, length, a, b)


def duel_html(seed: str, text_a: str, text_b: str, lang: str) -> str:
    """The duel message: the seed twice, each with its continuation, no settings."""
    shown = escape(excerpt(shown_seed(seed), SEED_SHOWN))
    parts = [text(lang, "duel_title")]
    for side, body in (("A", text_a), ("B", text_b)):
        parts.append(text(lang, "duel_part", side=side, seed=shown, text=escape(body)))
    return "\n\n".join(parts)


async def start_duel(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    seed: str,
    *,
    reply_to: Message | None,
    seed_user_id: int | None = None,
    press: Press | None = None,
) -> None:
    """The whole flow: admit, arms, two generations, finish, store, send, record the message.

    `seed_user_id`: whose text the seed is, when it came from another user's sample (🆚)."""
    services = services_of(context)
    answer = press.answer if press is not None else None
    async with admit(
        services, context.bot, update, cost=DUEL_COST, reply_to=reply_to, answer=answer
    ) as ticket:
        if not ticket.granted:
            return
        asker = await ticket.who()
        plan = await _plan(services, asker, storable(seed))
        if plan is None or asker.chat_id is None:
            await reply_html(reply_to, text(asker.lang, "duel_one_arm"))
            return
        generation = services.generation
        rngs = (secrets.randbits(63), secrets.randbits(63))
        levels = [generation.info(arm.model).level for arm in (plan.a, plan.b)]
        requests = [
            (
                Request(plan.seed, length=asked(plan.length, level), temperature=arm.temperature, rng=rng),
                arm.model,
            )
            for arm, rng, level in zip((plan.a, plan.b), rngs, levels, strict=True)
        ]
        made = await ticket.generate(requests, versions=plan.versions)
        if made is None:
            return
        finished = [finish(sample, plan.length, level) for sample, level in zip(made, levels, strict=True)]
        whole = await keep_whole(ticket, requests, finished, plan.length, levels, versions=plan.versions)
        if whole is None:
            return
        (a, rng_a), (b, rng_b) = ((kept.sample, kept.rng) for kept in whole)
        chat_id, private = asker.chat_id, asker.private

        async def store(session: AsyncSession) -> int | None:
            if not await repo.claim_update(session, update_id=update.update_id):
                return None  # this update was answered meanwhile (another replica)
            duel = await dr.record_duel(
                session,
                user_id=asker.user_id,
                chat_id=chat_id,
                private=private,
                seed=plan.seed,
                length=plan.length,
                a=dr.Side(plan.a, a.model_version or generation.info(plan.a.model).version, rng_a, a.text),
                b=dr.Side(plan.b, b.model_version or generation.info(plan.b.model).version, rng_b, b.text),
                update_id=update.update_id,
                seed_user_id=seed_user_id if seed_user_id != asker.user_id else None,
            )
            return duel.id

        duel_id = await services.db.run(store)
    if duel_id is None:
        return
    sent = await reply_html(
        reply_to,
        duel_html(plan.seed, a.text, b.text, asker.lang),
        reply_markup=kb.duel_keyboard(duel_id, asker.lang),
    )
    if sent is None:
        return

    async def record(session: AsyncSession) -> None:
        await dr.set_duel_message(session, duel_id=duel_id, message_id=sent.message_id)

    await services.db.run(record)


# -- entry points ------------------------------------------------------------------------------


async def on_duel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/duel [seed]: no seed picks one from the model's own book, like /gen."""
    message = update.effective_message
    if message is None or update.effective_user is None or update.effective_chat is None:
        return
    await start_duel(update, context, command_argument(message), reply_to=message)


async def on_start_duel_press(press: Press) -> None:
    """🆚 under a sample: a duel on its seed, checked like any press naming a sample."""
    action = press.action
    assert isinstance(action, kb.StartDuel)

    async def work(session: AsyncSession) -> repo.SampleOrigin | None:
        return await repo.get_sample_origin(session, sample_id=action.sample_id)

    found = await press.services.db.run(work, write=False)
    if found is None or not sample_press_allowed(press, found) or press.update.effective_chat is None:
        await press.refuse()
        return
    sample = found.sample
    if sample.acrostic:  # an acrostic's forced form would decide the duel by itself
        await press.answer(text(press.lang, "acrostic_no_duel"))
        return
    owner = sample.seed_user_id if sample.seed_user_id is not None else sample.user_id
    await start_duel(
        press.update, press.context, sample.seed, reply_to=press.message, seed_user_id=owner, press=press
    )


async def on_vote_press(press: Press) -> None:
    """A verdict: stored, and counted unless too fast or over the daily cap. Only a counted vote
    names the arms (to the voter alone), and it is final."""
    action = press.action
    assert isinstance(action, kb.DuelVote)
    settings = press.services.settings
    tg_user = press.query.from_user

    async def work(session: AsyncSession) -> tuple[str, dr.VoteResult | None, Duel | None]:
        found = await dr.get_duel_origin(session, duel_id=action.duel_id)
        if found is None:
            return "duel_gone", None, None
        duel = found.duel
        if not press.carried_by(found.chat_telegram_id, duel.telegram_message_id):
            return "button_invalid", None, None
        user, _ = await store_user_and_chat(session, Seen.of(tg_user, None))
        result = await dr.cast_vote(
            session,
            duel=duel,
            user_id=user.id,
            outcome=Outcome(action.outcome),
            min_delay_s=settings.duel_min_vote_s,
            daily_cap=settings.duel_daily_cap,
        )
        return "ok", result, duel

    verdict, result, duel = await press.services.db.run(work)
    if result is None or duel is None:
        await press.answer(text(press.lang, verdict))
        return
    lang = press.lang
    outcome = text(
        lang, {"a": "duel_a", "b": "duel_b", "tie": "duel_tie", "bad": "duel_bad"}[result.outcome.value]
    )
    if result.final:
        await press.answer(text(lang, "duel_final", outcome=outcome))
    elif result.early:
        await press.answer(text(lang, "duel_early_blind", outcome=outcome))
    elif result.capped:
        await press.answer(text(lang, "duel_capped_blind", outcome=outcome))
    else:
        a, b = side_text(duel, "a"), side_text(duel, "b")
        await press.answer(text(lang, "duel_voted", outcome=outcome, arm_a=a, arm_b=b))
        await after_vote(press.context.bot, press.services, duel)  # a challenger's verdict, if one
