"""Getting stored samples into their chats exactly once where Telegram lets us know.

Every sample is stored before it is sent (an outbox row: ``delivered`` false, no message id).
`deliver` sends it and records the message id. If the send certainly failed, the row stays
pending and the outbox sends it later (on the redelivered update, every OUTBOX_INTERVAL_S and
at start-up). If the send may have reached Telegram (a time-out), the row is marked
``send_uncertain`` and never sent again: at most one message beats a duplicate.
Samples being sent right now are in ``Services.sending``, so the outbox never races a send in
this process; across replicas, a send claim in the database (bot/db/repository/claims.py, taken in the
transaction that stores the sample, taken over only when expired) does the same, so several
replicas on one PostgreSQL never send a sample twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot, InlineKeyboardMarkup, Message, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot.calls import certainly_not_sent, telegram_call
from bot.db import repository as repo
from bot.db.models import utcnow
from bot.db.repository import claims
from bot.db.trip import Trip
from bot.finishing import shown_length
from bot.keyboards import rating_keyboard
from bot.render import stored_sample_html
from bot.replicas import dead_among
from bot.services import Services
from bot.texts import language_of
from core.generator import Sample
from core.novelty import Novelty

log = logging.getLogger(__name__)
ClaimStep = Callable[..., bool | None]  # a send claim's step (a trip unit)


@dataclass(frozen=True)
class Outgoing:
    """One message carrying one or more stored samples."""

    sample_ids: list[int]
    chat_id: int  # Telegram's chat id
    html: str
    markup: InlineKeyboardMarkup
    reply_to: int | None = None  # a message to quote (groups)


def outgoing(
    message: Message | None, sample_ids: list[int], body: str, markup: InlineKeyboardMarkup
) -> Outgoing | None:
    """The message to send in reply to `message` (quoted in groups), or None without one."""
    if message is None:
        return None
    quote = message.message_id if message.chat.type != "private" else None
    return Outgoing(sample_ids, message.chat.id, body, markup, quote)


@dataclass(frozen=True)
class ToStore:
    """One finished sample to store, with how it was made."""

    sample: Sample
    rng_seed: int
    novelty: Novelty | None
    acrostic: str | None = None  # an acrostic poem's heads and line length ("新年快乐|7")


@dataclass(frozen=True)
class Owner:
    """Whose sample it is and where it goes: stored user and chat ids, the model it came from,
    and whose text its seed is when it was copied from another user's sample."""

    user_id: int
    chat_id: int
    model: str
    model_version: str
    seed_user_id: int | None = None
    level: str = field(kw_only=True)  # the model's: what the shown length counts (bot/finishing.py)


async def store_samples(
    services: Services, owner: Owner, parts: list[ToStore], update_id: int | None
) -> list[int]:
    """Record the samples (with their rng seeds) in one transaction before sending them: the
    outbox rows, so an undelivered sample is kept and sent later. The update is claimed in the
    same transaction (one outcome per update: [] when another handler of the same update stored
    first), and so is each sample's send claim: live, it keeps every outbox (this process's and
    other replicas') off the sample until this send is recorded. Their ids join
    `services.sending` as the transaction returns; `send` takes them out again. One trip to
    the database (bot/db/trip.py): every reply stores this way."""
    replica = services.settings.replica_id

    def work(trip: Trip) -> list[int]:
        if update_id is not None and not repo.claim(trip, update_id=update_id):
            return []
        stored: list[int] = []
        for part in parts:
            sample_id = repo.insert_sample(
                trip,
                user_id=owner.user_id,
                chat_id=owner.chat_id,
                seed=part.sample.request.seed,
                model_name=owner.model,
                # the version that drew it (a model swapped since it was asked for: the new one)
                model_version=part.sample.model_version or owner.model_version,
                temperature=part.sample.request.temperature,
                length=part.sample.request.length,
                text=part.sample.text,
                generation_ms=round(part.sample.seconds * 1000),
                rng_seed=part.rng_seed,
                update_id=update_id,
                novelty=part.novelty,
                seed_user_id=owner.seed_user_id,
                acrostic=part.acrostic,
                shown_length=shown_length(part.sample, owner.level),
            )
            claims.claim_new(trip, sample_id=sample_id, replica=replica)
            stored.append(sample_id)
        return stored

    ids = await services.db.run_trip(work)
    services.sending.update(ids)
    services.counters.samples += len(ids)
    return ids


async def send(bot: Bot, services: Services, sample_ids: list[int], out: Outgoing | None) -> None:
    """Send stored samples (None: nothing to send them to); they leave `services.sending`."""
    try:
        if out is not None:
            await deliver(bot, services, out)
    finally:
        services.sending.difference_update(sample_ids)


async def deliver(bot: Bot, services: Services, out: Outgoing) -> Message | None:
    """Send once and record the outcome; returns the message, or None when it was not sent."""
    services.sending.update(out.sample_ids)
    try:
        if not await _claim_step(services, claims.attempt, out.sample_ids):
            log.warning("samples %s are being sent by another replica now; not sending", out.sample_ids)
            return None
        reply = ReplyParameters(out.reply_to, allow_sending_without_reply=True) if out.reply_to else None
        try:
            sent = await telegram_call(
                lambda: bot.send_message(
                    out.chat_id,
                    out.html,
                    parse_mode=ParseMode.HTML,
                    reply_markup=out.markup,
                    reply_parameters=reply,
                )
            )
        except TelegramError as exc:
            services.counters.undelivered += len(out.sample_ids)
            if certainly_not_sent(exc):
                log.warning("could not send samples %s (%s); the outbox will retry", out.sample_ids, exc)
                await _release(services, out.sample_ids)
            else:
                log.warning(
                    "samples %s may have reached Telegram (%s); not sending them again", out.sample_ids, exc
                )
                await _record(services, out.sample_ids, None)
            return None
        await _record(services, out.sample_ids, sent.message_id)
        return sent
    finally:
        services.sending.difference_update(out.sample_ids)


async def _claim_step(services: Services, step: ClaimStep, sample_ids: list[int]) -> bool:
    """Mark a send as started (False: the claim was taken over), or release it. An outage here
    does not stop the send (a single replica needs no claims; with several, an unmarked send
    only risks a duplicate)."""
    replica = services.settings.replica_id
    try:
        result = await services.db.run_trip(partial(step, sample_ids=sample_ids, replica=replica))
    except (DBAPIError, OSError) as exc:
        log.warning("could not update the send claims of samples %s (%s)", sample_ids, exc)
        return True
    return result is not False


async def _release(services: Services, sample_ids: list[int]) -> None:
    """Give samples whose send certainly failed back to the outbox; if the database is down,
    remember them, so the outbox releases them when it is back instead of waiting out the
    lease (the user would otherwise wait minutes for an answer)."""
    replica = services.settings.replica_id
    try:
        await services.db.run_trip(partial(claims.release, sample_ids=sample_ids, replica=replica))
    except (DBAPIError, OSError) as exc:
        log.warning("could not release the send claims of samples %s (%s); will retry", sample_ids, exc)
        services.unreleased.update(sample_ids)
    else:
        services.unreleased.difference_update(sample_ids)


async def _record(services: Services, sample_ids: list[int], message_id: int | None) -> None:
    """Store the message id (or the uncertainty); if the database is down, keep it in memory
    for the outbox to store, so a sent sample is never taken for an unsent one."""

    def work(trip: Trip) -> None:
        claims.done(trip, sample_ids=sample_ids)
        if message_id is None:
            repo.mark_uncertain(trip, sample_ids=sample_ids)
            return
        for sample_id in sample_ids:
            repo.mark_delivered(trip, sample_id=sample_id, message_id=message_id)

    try:
        await services.db.run_trip(work)
    except Exception as exc:  # whatever it was, the outcome must not be forgotten
        if isinstance(exc, DBAPIError | OSError):  # the database is unavailable: expected
            log.warning("could not record the delivery of samples %s (%s); will retry", sample_ids, exc)
        else:
            log.exception("could not record the delivery of samples %s; will retry", sample_ids)
        for sample_id in sample_ids:
            services.unrecorded[sample_id] = message_id
    else:
        for sample_id in sample_ids:
            services.unrecorded.pop(sample_id, None)


def render(services: Services, pending: repo.Pending) -> Outgoing:
    """A stored sample as the message it would have been (without the one-off notes)."""
    sample, lang = pending.sample, language_of(pending.language_code)
    body = stored_sample_html(services.generation, sample, lang)
    markup = rating_keyboard(
        sample.id, sample.up_votes, sample.down_votes, lang, shared=sample.shared, duel=not sample.acrostic
    )
    return Outgoing([sample.id], pending.chat_telegram_id, body, markup)


async def deliver_pending(
    bot: Bot, services: Services, pending: list[repo.Pending], *, reply_to: int | None = None
) -> int:
    """Send each pending sample nobody is sending right now; returns how many went out."""
    sent = 0
    for item in pending:
        sample_id = item.sample.id
        if sample_id in services.sending or sample_id in services.unrecorded:
            continue
        # Claim it in this process, then in the database: `pending` may have been read just
        # before another send of it was recorded, and another replica may be sending it now.
        services.sending.add(sample_id)
        try:
            if not await services.db.run(partial(_take_over, services=services, sample_id=sample_id)):
                continue
            out = render(services, item)
            if reply_to is not None:
                out = Outgoing(out.sample_ids, out.chat_id, out.html, out.markup, reply_to)
            if await deliver(bot, services, out) is not None:
                sent += 1
        finally:
            services.sending.discard(sample_id)
    return sent


async def _take_over(session: AsyncSession, *, services: Services, sample_id: int) -> bool:
    """Whether the sample is still pending and now ours to send (no live claim elsewhere)."""
    settings = services.settings
    lease = timedelta(seconds=settings.send_claim_s)
    return await claims.take_over(session, sample_id=sample_id, replica=settings.replica_id, lease=lease)


class Outbox:
    """The periodic sweep: record what was sent, give up on old samples, send the rest."""

    def __init__(self, bot: Bot, services: Services) -> None:
        self.bot = bot
        self.services = services
        self._given_up_until: datetime | None = None  # samples made before this were counted
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def sweep(self, *, now: datetime | None = None) -> int:
        """One pass; returns how many samples it sent."""
        services = self.services
        now = now or utcnow()
        await self._record_unrecorded()
        if services.unreleased:
            await _release(services, sorted(services.unreleased))
        oldest = now - timedelta(seconds=services.settings.outbox_max_age_s)

        async def stale(session: AsyncSession) -> int:
            return await repo.count_pending_between(session, after=self._given_up_until, until=oldest)

        skipped = await services.db.run(stale, write=False)
        if skipped:
            log.warning(
                "outbox: skipped %d undelivered sample(s) older than %g s; not sending them",
                skipped,
                services.settings.outbox_max_age_s,
            )
        self._given_up_until = oldest

        async def pending(session: AsyncSession) -> list[repo.Pending]:
            busy = services.sending | services.unrecorded.keys()
            return await repo.pending_samples(session, created_after=oldest, exclude=busy)

        items = await services.db.run(pending, write=False)
        sent = await deliver_pending(self.bot, services, items)
        if sent:
            log.info("outbox: delivered %d sample(s) late", sent)
        return sent

    async def _record_unrecorded(self) -> None:
        for sample_id, message_id in list(self.services.unrecorded.items()):
            await _record(self.services, [sample_id], message_id)

    async def _recover(self) -> None:
        """Claims from before this start held by processes known to be dead (this replica's
        previous run, or a crashed process of this host) are settled now, not after their lease
        (a kill between a send and its record left them)."""
        services = self.services
        before = datetime.fromtimestamp(services.counters.started, tz=UTC)
        holders = await services.db.run(lambda session: claims.holders(session, before=before), write=False)
        dead = dead_among(holders, me=services.settings.replica_id)
        if not dead:
            return  # the usual start: a read, no write lock
        settled = await services.db.run(lambda session: claims.recover(session, replicas=dead, before=before))
        if settled:
            log.warning("outbox: settled %d send claim(s) of dead process(es): %s", settled, ", ".join(dead))

    async def _run(self) -> None:
        try:
            await self._recover()
        except (DBAPIError, OSError) as exc:  # the database is down: the lease settles them later
            log.warning("outbox: could not settle the previous run's send claims (%s)", exc)
        while not self._stopping.is_set():
            try:
                await self.sweep()
            except (DBAPIError, OSError, TelegramError) as exc:  # an outage: the next sweep retries
                log.warning("outbox sweep failed (%s); trying again later", exc)
            except Exception:
                log.exception("outbox sweep failed; trying again later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.services.settings.outbox_interval_s)

    def start(self) -> None:
        """Sweep now (start-up) and then every OUTBOX_INTERVAL_S."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="outbox")

    async def stop(self, *, grace_s: float = 10.0) -> None:
        """Stop sweeping: a sweep under way may finish its send and record it (cancelled between
        the two, a sent sample would look unsent), up to `grace_s`."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._task, grace_s)
