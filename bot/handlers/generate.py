"""Seeds in, samples out: private text, /gen, group mentions and replies, "again", /compare."""

from __future__ import annotations

import asyncio
import html
import logging
import re
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, MessageEntity, Update
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.copying import badge, draw_novel
from bot.db import claims
from bot.db import repository as repo
from bot.db.models import utcnow
from bot.generation import QueueFullError, ServiceClosedError
from bot.handlers.common import lang_of, reply_html, unit_of, who
from bot.handlers.delivery import Outgoing, deliver, deliver_pending
from bot.keyboards import rating_keyboard
from bot.parsing import effective_length, format_temperature
from bot.render import excerpt, sample_html, shown_seed
from bot.services import Services, services_of
from bot.texts import text
from core.generator import Request, Sample
from core.limits import MAX_LENGTH, TEMPERATURE_PRESETS
from core.novelty import Novelty
from core.word_end import WORD_END_MARGIN, end_on_word

log = logging.getLogger(__name__)

COMPARE_LENGTH = {"char": 200, "word": 50}  # four parts must fit in one message
TYPING_AFTER_S = 0.3  # show "typing..." only when a reply takes longer than this
TYPING_MAX_OUTSTANDING = 10  # ... and while at most this many requests are being served


@dataclass(frozen=True)
class GenerationPlan:
    """One seed to continue, with the settings resolved for its user and chat."""

    user_id: int
    chat_id: int
    model: str
    model_version: str
    level: str
    temperature: float
    length: int
    lang: str


def storable(seed: str) -> str:
    """The seed as it is generated from and stored: NUL characters removed (PostgreSQL text
    cannot hold them, and no model has them in its vocabulary), everything else verbatim."""
    return seed.replace("\x00", "")


def command_argument(message: Message) -> str:
    """The text after the leading /command (newlines kept), or "" when there is none."""
    raw = message.text or ""
    for entity in message.entities:
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            return raw[len(message.parse_entity(entity)) :].strip()
    return raw.strip()


def without_entity(text_: str, entity: MessageEntity) -> str:
    """The text with one entity cut out, one space where it was (ends stripped).

    Telegram counts entity offsets in UTF-16 code units (an emoji is two), so the cut is made
    in UTF-16, as python-telegram-bot's parse_entity does, never on Python characters.
    """
    units = text_.encode("utf-16-le")
    before = units[: entity.offset * 2].decode("utf-16-le")
    after = units[(entity.offset + entity.length) * 2 :].decode("utf-16-le")
    return " ".join(part for part in (before.strip(), after.strip()) if part)


async def _prepare(services: Services, update: Update) -> GenerationPlan:
    """Store/refresh the user and chat and resolve the settings to generate with."""
    found = await who(services, update)
    settings = found.settings
    model = services.generation.resolve(settings.model_name)
    info = services.generation.info(model)
    return GenerationPlan(
        user_id=found.user_id,
        chat_id=found.chat_id,
        model=model,
        model_version=info.version,
        level=info.level,
        temperature=settings.temperature,
        length=effective_length(settings.length, info.level),
        lang=lang_of(update),
    )


async def refusal_of(
    services: Services, update: Update, cost: int = 1, request: int | None = None
) -> str | None:
    """Why the per-user limits refuse a request making `cost` generations now (None: they don't).

    `request`: the update id the slot would be taken for (its redelivery is not "busy")."""
    assert update.effective_user
    user_id, lang = update.effective_user.id, lang_of(update)
    if await services.limits.busy(user_id, request):
        return text(lang, "one_at_a_time")
    wait = await services.limits.retry_after(user_id, cost)
    if wait:
        return text(lang, "rate_limited", limit=services.limits.per_minute, seconds=wait)
    return None


async def _start(
    services: Services,
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    reply_to: Message | None,
    cost: int = 1,
    *,
    quiet: bool = False,
) -> bool:
    """Admit a new request: True marks the user running (the caller ends it).

    A user's messages are admitted one at a time in the order they came (services.admission).
    A redelivered update is no new request: it is never refused and costs nothing; its stored
    samples are sent if they never were. It is recognised *before* the limits are consulted,
    so it never holds the user's slot: otherwise the user's next message, sent after seeing
    the answer, could arrive meanwhile, be refused "one at a time" and be lost (the webhook
    answers 2xx after a refusal; issue 17). A refusal costs nothing either, and is said at
    most once per user every few seconds (never when `quiet`: a button press was already
    answered with a toast); the rest are dropped without a word.
    """
    assert update.effective_user
    user_id = update.effective_user.id
    async with services.admission.turn(user_id):
        if await _resend_if_duplicate(services, update, context, reply_to):
            # Its first handler may have died holding the slot after storing the answer.
            await services.limits.release(user_id, update.update_id)
            return False
        refusal = await refusal_of(services, update, cost, request=update.update_id)
        if refusal is None and not await services.limits.begin(user_id, update.update_id):
            refusal = text(lang_of(update), "one_at_a_time")  # another replica was quicker
        if refusal is None:
            return True
    if not quiet and services.notices.allow(user_id):
        await reply_html(update.effective_message, refusal)
    return False


async def _typing(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show "typing..." (best effort: a failure here must not stop the reply)."""
    if update.effective_chat is None:
        return
    try:
        await context.bot.send_chat_action(update.effective_chat.id, ChatAction.TYPING)
    except TelegramError as exc:
        log.debug("typing action failed: %s", exc)


async def _generate(
    services: Services, update: Update, requests: list[Request], model: str
) -> list[Sample] | None:
    """Run requests through the queue; reply with the reason and return None when refused."""
    lang = lang_of(update)
    try:
        return list(await asyncio.gather(*(services.generation.generate(r, model=model) for r in requests)))
    except QueueFullError:
        await reply_html(update.effective_message, text(lang, "busy"))
    except ServiceClosedError:
        await reply_html(update.effective_message, text(lang, "restarting"))
    return None


async def _generate_one(services: Services, update: Update, request: Request, model: str) -> Sample | None:
    """One more draw (MAX_COPIED), or None when the queue refused it."""
    samples = await _generate(services, update, [request], model)
    return samples[0] if samples else None


async def _generate_with_typing(
    services: Services,
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    requests: list[Request],
    model: str,
) -> list[Sample] | None:
    """Generate; show "typing..." only if the user would otherwise wait noticeably.

    Every Bot API call counts against Telegram's ~30 messages a second, so a typing action for
    a reply that arrives in 100 ms only delays other users' replies. When many requests are
    outstanding (a burst), the sending budget goes to the replies themselves: with 200 at once,
    typing actions doubled the calls and the last reply came 13 s after the burst, not 7.
    """
    task = asyncio.ensure_future(_generate(services, update, requests, model))
    done, _ = await asyncio.wait({task}, timeout=TYPING_AFTER_S)
    if not done and services.generation.outstanding <= TYPING_MAX_OUTSTANDING:
        await _typing(update, context)
    return await task


async def _store(
    services: Services,
    job: GenerationPlan,
    parts: list[tuple[Sample, int, Novelty | None]],
    update_id: int | None,
) -> list[int]:
    """Record the samples (with their rng seeds) in one transaction before sending them: the
    outbox rows, so an undelivered sample is kept and sent later. Their ids join
    `services.sending` before the commit, so the outbox never sees them between the commit and
    this send; the caller's `_send` takes them out again."""
    attempt: list[int] = []

    async def work(session: AsyncSession) -> list[int]:
        services.sending.difference_update(attempt)  # a retried transaction: those ids are void
        attempt.clear()
        # Another replica handling the same (redelivered) update stored it first: store nothing.
        if update_id is not None and not await repo.claim_update(session, update_id=update_id):
            return []
        for sample, rng_seed, novelty in parts:
            stored = await repo.record_sample(
                session,
                user_id=job.user_id,
                chat_id=job.chat_id,
                seed=sample.request.seed,
                model_name=job.model,
                model_version=job.model_version,
                temperature=sample.request.temperature,
                length=sample.request.length,
                text=sample.text,
                generation_ms=round(sample.seconds * 1000),
                rng_seed=rng_seed,
                update_id=update_id,
                novelty=novelty,
            )
            await claims.claim_new(session, sample_id=stored.id, replica=services.settings.replica_id)
            services.sending.add(stored.id)
            attempt.append(stored.id)
        return list(attempt)

    try:
        ids = await services.db.run(work)
    except BaseException:
        services.sending.difference_update(attempt)
        raise
    services.counters.samples += len(ids)
    return ids


def _outgoing(
    message: Message | None, sample_ids: list[int], body: str, markup: InlineKeyboardMarkup
) -> Outgoing | None:
    """The message to send in reply to `message` (quoted in groups)."""
    if message is None:
        return None
    quote = message.message_id if message.chat.type != "private" else None
    return Outgoing(sample_ids, message.chat.id, body, markup, quote)


async def _send(
    context: ContextTypes.DEFAULT_TYPE, services: Services, sample_ids: list[int], out: Outgoing | None
) -> None:
    try:
        if out is not None:
            await deliver(context.bot, services, out)
    finally:
        services.sending.difference_update(sample_ids)


def _asked(length: int, level: str) -> int:
    """Tokens to generate for a sample of `length`: a char model gets a margin to end a word in."""
    return min(length + WORD_END_MARGIN, MAX_LENGTH) if level == "char" else length


def _on_word_end(sample: Sample, length: int, level: str) -> Sample:
    """A char model's sample cut to end on a word near `length` (a word model's always does)."""
    if level != "char":
        return sample
    request = replace(sample.request, length=length)  # stored as the length the user asked for
    text_ = end_on_word(sample.text, length)
    # A char model's tokens are its characters: keep the ids of the text that is sent.
    return replace(
        sample,
        request=request,
        text=text_,
        token_ids=sample.token_ids[: len(text_)],
        pieces=sample.pieces[: len(text_)],
    )


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def other_script(seed: str, model_language: str) -> bool:
    """Whether a seed is written in the other script than the model's: Chinese characters to an
    English model, or Latin letters (and no Chinese) to a Chinese one."""
    if model_language == "zh":
        return bool(_LATIN.search(seed)) and not _CJK.search(seed)
    return bool(_CJK.search(seed))


def _notes(sample: Sample, lang: str, *, picked: bool, language: str) -> list[str]:
    notes = [text(lang, "random_seed")] if picked else []
    if not picked and other_script(sample.request.seed, language):
        notes.append(
            text(lang, "other_script", language=text(lang, f"lang_{'zh' if language == 'zh' else 'en'}"))
        )
    if sample.seed_tokens and sample.unknown * 2 > sample.seed_tokens:
        notes.append(text(lang, "mostly_unknown", unknown=sample.unknown, total=sample.seed_tokens))
    elif sample.context_tokens < sample.seed_tokens:
        notes.append(text(lang, "seed_too_long"))
    return notes


async def continue_seed(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    seed: str,
    *,
    reply_to: Message | None = None,
    settings_from: int | None = None,
    quiet: bool = False,
) -> None:
    """The whole flow for one seed: limits, settings, queue, store, send, mark delivered.

    `settings_from` is a stored sample id whose model and temperature are reused ("again");
    `quiet`: a refusal was already answered (a button's toast), so none is sent.
    """
    services = services_of(context)
    assert update.effective_user
    reply_to = reply_to or update.effective_message
    seed = storable(seed)
    user_key = update.effective_user.id
    if not await _start(services, update, context, reply_to, quiet=quiet):
        return
    try:
        job = await _prepare(services, update)
        if settings_from is not None:
            job = await _settings_of_sample(services, job, settings_from)
        picked = not seed.strip()
        if picked:
            seed = await services.generation.random_seed_text(job.model)
        rng_seed = secrets.randbits(63)
        request = Request(
            seed, length=_asked(job.length, job.level), temperature=job.temperature, rng=rng_seed
        )
        samples = await _generate_with_typing(services, update, context, [request], job.model)
        if samples is None:
            return
        await services.limits.charge(user_key, len(samples))  # charged for work done, not for asking
        (ended,) = (_on_word_end(s, job.length, job.level) for s in samples)

        async def draw_again(rng: int) -> Sample | None:
            more = await _generate_one(services, update, replace(request, rng=rng), job.model)
            return _on_word_end(more, job.length, job.level) if more else None

        drawn = await draw_novel(
            services.novelty, job.model, services.settings.max_copied, ended, rng_seed, draw_again
        )
        sample, rng_seed = drawn.sample, drawn.rng_seed
        stored = await _store(
            services,
            job,
            [(sample, rng_seed, drawn.novelty)],
            update.update_id if settings_from is None else None,
        )
    finally:
        await services.limits.end(user_key)
    if not stored:  # another replica answered this update meanwhile
        await _resend_if_duplicate(services, update, context, reply_to)
        return
    (sample_id,) = stored
    out = None
    try:
        _, unit = unit_of(services.generation, job.model, job.lang)
        body = sample_html(
            seed=seed,
            continuation=sample.text,
            model=job.model,
            temperature=job.temperature,
            length=len(sample.text) if job.level == "char" else len(sample.token_ids),
            unit=unit,
            lang=job.lang,
            notes=_notes(
                sample, job.lang, picked=picked, language=services.generation.info(job.model).language
            )
            + ([text(job.lang, "copied_every_draw", draws=drawn.draws)] if drawn.every_draw_copied else []),
            badge=badge(drawn.novelty, job.level, job.lang),
        )
        markup = rating_keyboard(sample_id, 0, 0, job.lang, shared=False)
        out = _outgoing(reply_to, [sample_id], body, markup)
    finally:
        await _send(context, services, [sample_id], out)


async def _settings_of_sample(services: Services, job: GenerationPlan, sample_id: int) -> GenerationPlan:
    """Reuse a stored sample's model and temperature (its model may have been unloaded)."""

    async def work(session: AsyncSession) -> tuple[str, float, int] | None:
        stored = await repo.get_sample(session, sample_id=sample_id)
        return (stored.model_name, stored.temperature, stored.length) if stored else None

    found = await services.db.run(work, write=False)
    if found is None:
        return job
    name, temperature, length = found
    model = services.generation.resolve(name)
    info = services.generation.info(model)
    return replace(
        job,
        model=model,
        model_version=info.version,
        level=info.level,
        temperature=temperature,
        length=effective_length(length, info.level),
    )


async def _resend_if_duplicate(
    services: Services, update: Update, context: ContextTypes.DEFAULT_TYPE, reply_to: Message | None
) -> bool:
    """An update seen before (redelivered after a crash) is not generated again; its samples
    are sent now if they never were (the outbox), else nothing is sent."""

    async def work(session: AsyncSession) -> tuple[int | None, list[repo.Pending]]:
        stored = await repo.get_sample_by_update(session, update_id=update.update_id)
        if stored is None:
            return None, []
        return stored.id, await repo.pending_samples_of_update(session, update_id=update.update_id)

    found, pending = await services.db.run(work, write=False)
    if found is None:
        return False
    oldest = utcnow() - timedelta(seconds=services.settings.outbox_max_age_s)
    fresh = [item for item in pending if item.sample.created_at > oldest]  # as old as the outbox takes
    if len(fresh) < len(pending):
        log.warning(
            "update %s: skipped %d undelivered sample(s), too old",
            update.update_id,
            len(pending) - len(fresh),
        )
    quote = reply_to.message_id if reply_to is not None and reply_to.chat.type != "private" else None
    sent = await deliver_pending(context.bot, services, fresh, reply_to=quote)
    log.info(
        "update %s was already answered (sample %s); not generating again, %d undelivered sent now",
        update.update_id,
        found,
        sent,
    )
    return True


# -- entry points ------------------------------------------------------------------------------


async def on_private_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any text in a private chat is a seed."""
    if update.effective_message and update.effective_message.text:
        await continue_seed(update, context, update.effective_message.text)


async def on_gen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/gen <seed> (alias /generate); an empty one picks a seed from the model's corpus."""
    if update.effective_message:
        await continue_seed(update, context, command_argument(update.effective_message))


async def on_group_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """In groups: replies to the bot's messages and messages mentioning it; other chatter is ignored."""
    message = update.effective_message
    if message is None or not message.text:
        return
    me = context.bot
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == me.id:
        await continue_seed(update, context, message.text)
        return
    mention = f"@{me.username}".lower() if me.username else None
    for entity, value in message.parse_entities([MessageEntity.MENTION]).items():
        if mention and value.lower() == mention:
            await continue_seed(update, context, without_entity(message.text, entity))
            return


async def on_non_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, photos and the like in a private chat get a short hint."""
    await reply_html(update.effective_message, text(lang_of(update), "non_text"))


async def on_compare(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/compare <seed>: the book's loop in one message, each part ratable."""
    services = services_of(context)
    message = update.effective_message
    if message is None or update.effective_user is None:
        return
    seed = storable(command_argument(message))
    lang = lang_of(update)
    if not await _start(services, update, context, message, cost=len(TEMPERATURE_PRESETS)):
        return
    try:
        job = await _prepare(services, update)
        if not seed:
            seed = await services.generation.random_seed_text(job.model)
        length = min(job.length, COMPARE_LENGTH.get(job.level, 200))
        seeds = [secrets.randbits(63) for _ in TEMPERATURE_PRESETS]
        requests = [
            Request(seed, length=_asked(length, job.level), temperature=t, rng=r)
            for t, r in zip(TEMPERATURE_PRESETS, seeds, strict=True)
        ]
        generated = await _generate_with_typing(services, update, context, requests, job.model)
        if generated is None:
            return
        samples = [_on_word_end(s, length, job.level) for s in generated]
        await services.limits.charge(update.effective_user.id, len(samples))  # four generations, four slots
        novelties = [services.novelty.check(job.model, s.token_ids) for s in samples]
        # Every part carries the update id: a redelivered update finds all four.
        ids = await _store(services, job, list(zip(samples, seeds, novelties, strict=True)), update.update_id)
    finally:
        await services.limits.end(update.effective_user.id)
    if not ids:  # another replica answered this update meanwhile
        await _resend_if_duplicate(services, update, context, message)
        return
    out = None
    try:
        badges = [badge(novelty, job.level, lang) for novelty in novelties]
        out = _outgoing(message, ids, _compare_html(seed, samples, lang, badges), _compare_keyboard(ids))
    finally:
        await _send(context, services, ids, out)


def _compare_html(seed: str, samples: list[Sample], lang: str, badges: list[str | None]) -> str:
    shown = excerpt(shown_seed(seed), 120)
    parts = [text(lang, "compare_title", seed=_escape(shown))]
    for temperature, sample, mark in zip(TEMPERATURE_PRESETS, samples, badges, strict=True):
        parts.append(
            text(
                lang,
                "compare_part",
                temperature=format_temperature(temperature),
                seed=_escape(shown),
                text=_escape(sample.text),
            )
            + (f"\n<i>{_escape(mark)}</i>" if mark else "")
        )
    return "\n\n".join(parts)


def _compare_keyboard(ids: list[int]) -> InlineKeyboardMarkup:
    rows = [
        [
            InlineKeyboardButton(f"T={format_temperature(t)} 👍 0", callback_data=f"r:{sample_id}:+"),
            InlineKeyboardButton(f"T={format_temperature(t)} 👎 0", callback_data=f"r:{sample_id}:-"),
        ]
        for t, sample_id in zip(TEMPERATURE_PRESETS, ids, strict=True)
    ]
    return InlineKeyboardMarkup(rows)


def _escape(value: str) -> str:
    return html.escape(value, quote=False)
