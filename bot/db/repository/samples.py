"""Generated samples: storing them, finding them, sharing them, and the outbox's reads and marks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    Chat,
    InlineOffer,
    StoredSample,
    User,
)
from bot.db.repository.base import check_length, check_temperature_setting, rowcount, table_of
from bot.db.trip import Trip, in_session
from core.novelty import Novelty

# Every reply's statements, built once, on the table (see base.per_dialect and base.table_of).
_SAMPLES = table_of(StoredSample)
_RECORD = insert(_SAMPLES).returning(_SAMPLES.c.id)
_DELIVERED = (
    update(_SAMPLES)
    .where(_SAMPLES.c.id == bindparam("sample_id"))
    .values(telegram_message_id=bindparam("message_id"), delivered=True)
)
_UNCERTAIN = (
    update(_SAMPLES).where(_SAMPLES.c.id.in_(bindparam("ids", expanding=True))).values(send_uncertain=True)
)


def insert_sample(
    trip: Trip,
    *,
    user_id: int,
    chat_id: int,
    seed: str,
    model_name: str,
    model_version: str,
    temperature: float,
    length: int,
    text: str,
    generation_ms: int,
    rng_seed: int | None = None,
    telegram_message_id: int | None = None,
    delivered: bool = False,
    update_id: int | None = None,
    shared: bool = False,
    inline_message_id: str | None = None,
    novelty: Novelty | None = None,
    seed_user_id: int | None = None,
    acrostic: str | None = None,
    shown_length: int | None = None,
) -> int:
    """Store a generated sample; returns its id (for the rating keyboard).

    ``seed`` is the user's text as sent and ``text`` what the model generated after it;
    ``novelty``, how much of it was copied from the model's book (None: not checked);
    ``seed_user_id``, whose text the seed is when copied from another user's sample;
    ``acrostic``, an acrostic poem's heads and line length ("新年快乐|7");
    ``shown_length``, the count shown under it (``length`` is the length asked for).
    The usual flow stores the sample first (delivered=False), sends the message with a
    keyboard built from its id, then calls ``set_sample_message_id``.
    """
    if rng_seed is not None and not -(2**63) <= rng_seed < 2**63:
        # BIGINT on both backends; draw seeds with e.g. secrets.randbits(63).
        raise ValueError("rng_seed must fit in a signed 64-bit integer")
    values = dict(
        user_id=user_id,
        chat_id=chat_id,
        seed=seed,
        model_name=model_name,
        model_version=model_version,
        temperature=check_temperature_setting(temperature),
        length=check_length(length),
        rng_seed=rng_seed,
        text=text,
        generation_ms=max(0, int(generation_ms)),
        telegram_message_id=telegram_message_id,
        delivered=delivered,
        update_id=update_id,
        shared=shared,
        inline_message_id=inline_message_id,
        longest_copied=novelty.longest_copied if novelty else None,
        new_ngram_share=round(novelty.new_ngram_share, 4) if novelty else None,
        seed_user_id=seed_user_id,
        acrostic=acrostic,
        shown_length=shown_length,
    )
    # One INSERT .. RETURNING rather than the unit of work's add + flush (once per reply),
    # built once: the values are its parameters.
    ((sample_id,),) = trip.rows(_RECORD, values)
    return int(sample_id)


async def record_sample(session: AsyncSession, **fields: Any) -> int:
    """`insert_sample` inside a session's unit of work (the same keyword arguments)."""
    return await in_session(session, partial(insert_sample, **fields))


async def get_sample(session: AsyncSession, *, sample_id: int) -> StoredSample | None:
    """The sample with this id, if it still exists."""
    return await session.get(StoredSample, sample_id)


@dataclass(frozen=True, slots=True)
class SampleOrigin:
    """A sample with the Telegram ids of its chat and author: what a button press is checked
    against."""

    sample: StoredSample
    chat_telegram_id: int
    author_telegram_id: int


async def get_sample_origin(session: AsyncSession, *, sample_id: int) -> SampleOrigin | None:
    """The sample with its chat's and author's Telegram ids, if it still exists."""
    row = (
        await session.execute(
            select(StoredSample, Chat.telegram_id, User.telegram_id)
            .join(Chat, StoredSample.chat_id == Chat.id)
            .join(User, StoredSample.user_id == User.id)
            .where(StoredSample.id == sample_id)
        )
    ).one_or_none()
    return None if row is None else SampleOrigin(row[0], int(row[1]), int(row[2]))


async def samples_of_message(
    session: AsyncSession, *, chat_telegram_id: int, message_id: int
) -> list[tuple[StoredSample, str | None]]:
    """The samples one Telegram message shows (one, or a /compare's four, in id order), each
    with its author's language code (the message was written in it)."""
    rows = await session.execute(
        select(StoredSample, User.language_code)
        .join(Chat, StoredSample.chat_id == Chat.id)
        .join(User, StoredSample.user_id == User.id)
        .where(Chat.telegram_id == chat_telegram_id, StoredSample.telegram_message_id == message_id)
        .order_by(StoredSample.id)
    )
    return [(row[0], row[1]) for row in rows.all()]


async def set_shared(session: AsyncSession, *, sample_id: int, shared: bool) -> bool:
    """Make a sample public (visible in every private chat's /rate and /top) or private again."""
    result = await session.execute(
        update(StoredSample).where(StoredSample.id == sample_id).values(shared=shared)
    )
    return rowcount(result) > 0


async def get_sample_by_update(session: AsyncSession, *, update_id: int) -> StoredSample | None:
    """The (newest) sample recorded for Telegram update ``update_id``, if any.

    Lets a handler recognise an update redelivered after a crash. Telegram may reuse update
    ids after a week without updates, so a caller may also want to check ``created_at``.
    """
    stmt = (
        select(StoredSample)
        .where(StoredSample.update_id == update_id)
        .order_by(StoredSample.id.desc())
        .limit(1)
    )
    return await session.scalar(stmt)


def mark_delivered(trip: Trip, *, sample_id: int, message_id: int) -> bool:
    """Record the Telegram message a sample was sent as and mark it delivered.

    Returns False when the sample no longer exists (deleted in the meantime).
    """
    return trip.count(_DELIVERED, {"sample_id": sample_id, "message_id": message_id}) > 0


async def set_sample_message_id(session: AsyncSession, *, sample_id: int, message_id: int) -> bool:
    """`mark_delivered` inside a session's unit of work."""
    return await in_session(session, partial(mark_delivered, sample_id=sample_id, message_id=message_id))


@dataclass(frozen=True, slots=True)
class Pending:
    """A stored sample still to be sent, with where to send it and in which language."""

    sample: StoredSample
    chat_telegram_id: int
    language_code: str | None


def _pending_query() -> Any:
    return (
        select(StoredSample, Chat.telegram_id, User.language_code)
        .join(Chat, StoredSample.chat_id == Chat.id)
        .join(User, StoredSample.user_id == User.id)
        .where(
            StoredSample.delivered.is_(False),
            StoredSample.send_uncertain.is_(False),
            StoredSample.telegram_message_id.is_(None),
            StoredSample.inline_message_id.is_(None),
        )
    )


async def pending_samples(
    session: AsyncSession, *, created_after: datetime, limit: int = 100, exclude: Iterable[int] = ()
) -> list[Pending]:
    """Undelivered samples whose send certainly failed, made after ``created_after``, oldest first."""
    stmt = _pending_query().where(StoredSample.created_at > created_after)
    skip = list(exclude)
    if skip:
        stmt = stmt.where(StoredSample.id.not_in(skip))
    rows = (await session.execute(stmt.order_by(StoredSample.created_at, StoredSample.id).limit(limit))).all()
    return [Pending(row[0], int(row[1]), row[2]) for row in rows]


async def pending_samples_of_update(session: AsyncSession, *, update_id: int) -> list[Pending]:
    """The undelivered samples a Telegram update asked for (a redelivered update sends them)."""
    rows = (
        await session.execute(
            _pending_query().where(StoredSample.update_id == update_id).order_by(StoredSample.id)
        )
    ).all()
    return [Pending(row[0], int(row[1]), row[2]) for row in rows]


async def is_pending(session: AsyncSession, *, sample_id: int) -> bool:
    """Whether this sample is (still) waiting to be sent."""
    return await session.scalar(_pending_query().where(StoredSample.id == sample_id)) is not None


async def count_pending_between(session: AsyncSession, *, after: datetime | None, until: datetime) -> int:
    """How many undelivered samples were made in (after, until]: those the outbox gives up on."""
    pending = _pending_query().where(StoredSample.created_at <= until)
    if after is not None:
        pending = pending.where(StoredSample.created_at > after)
    return int(await session.scalar(select(func.count()).select_from(pending.subquery())) or 0)


def mark_uncertain(trip: Trip, *, sample_ids: Iterable[int]) -> None:
    """A send of these samples may have reached Telegram: never send them again."""
    ids = list(sample_ids)
    if ids:
        trip.count(_UNCERTAIN, {"ids": ids})


async def mark_send_uncertain(session: AsyncSession, *, sample_ids: Iterable[int]) -> None:
    """`mark_uncertain` inside a session's unit of work."""
    await in_session(session, partial(mark_uncertain, sample_ids=list(sample_ids)))


async def create_inline_offer(
    session: AsyncSession,
    *,
    user_id: int,
    seed: str,
    model_name: str,
    model_version: str,
    candidates: list[dict[str, Any]],
) -> int:
    """Store the continuations offered for one inline query; returns the offer's id."""
    offer = InlineOffer(
        user_id=user_id, seed=seed, model_name=model_name, model_version=model_version, candidates=candidates
    )
    session.add(offer)
    await session.flush()
    return offer.id


async def take_inline_offer(session: AsyncSession, *, offer_id: int, user_id: int) -> InlineOffer | None:
    """This user's offer, locked (None: not theirs, or gone). It may have been chosen from
    before: Telegram and the bot both reuse an answer for a few seconds, so one offer can be
    sent twice; its `chosen` is the first pick."""
    offer = await session.get(InlineOffer, offer_id, with_for_update=True)
    if offer is None or offer.user_id != user_id:
        return None
    return offer


async def prune_inline_offers(session: AsyncSession, *, older_than: datetime) -> int:
    """Delete the offers made before ``older_than`` that nothing was chosen from; returns how
    many went. A chosen offer stays: with its candidates it is the preference kept for
    fine-tuning (README, "Inline mode"), and there is one per message sent, not per keystroke.
    """
    stmt = delete(InlineOffer).where(InlineOffer.created_at < older_than, InlineOffer.chosen.is_(None))
    return rowcount(await session.execute(stmt))
