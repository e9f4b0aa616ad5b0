"""Lists and numbers: /top, /rate's next sample, /mystats and /stats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    Chat,
    Rating,
    StoredSample,
    User,
    utcnow,
)
from bot.db.repository.base import UNSET, Unset


@dataclass(frozen=True, slots=True)
class UserStats:
    """What /stats shows a user about themselves."""

    samples: int
    ratings_given: int
    up_received: int
    down_received: int
    first_sample_at: datetime | None
    last_sample_at: datetime | None


@dataclass(frozen=True, slots=True)
class ModelStats:
    """Per-model line of the admin stats."""

    model_name: str
    samples: int
    up_votes: int
    down_votes: int
    avg_generation_ms: float


@dataclass(frozen=True, slots=True)
class AdminStats:
    """Whole-database numbers for the admin's /stats."""

    users: int
    chats: dict[str, int]  # chat type -> count
    samples: int
    delivered_samples: int
    samples_last_24h: int
    ratings: int
    up_votes: int
    down_votes: int
    models: list[ModelStats]


async def top_samples(
    session: AsyncSession,
    *,
    chat_id: int | None = None,
    model_name: str | None = None,
    since: datetime | None = None,
    min_net: int = 1,
    limit: int = 10,
    visible_to: int | Unset | None = UNSET,
) -> list[StoredSample]:
    """The best-rated samples, globally or within one chat and/or one model.

    ``visible_to=user_id`` keeps only what that user may see outside the samples' chats: their
    own samples and shared ones (``visible_to=None``: shared ones only). Ordered by net votes
    (up minus down), then up-votes, then newest. Samples with fewer than ``min_net`` net votes
    are left out, so unrated ones do not fill the list.
    """
    net = StoredSample.up_votes - StoredSample.down_votes
    stmt = select(StoredSample).where(net >= min_net)
    if not isinstance(visible_to, Unset):
        own: ColumnElement[bool] = StoredSample.user_id == visible_to if visible_to is not None else false()
        stmt = stmt.where(or_(StoredSample.shared.is_(True), own))
    if chat_id is not None:
        stmt = stmt.where(StoredSample.chat_id == chat_id)
    if model_name is not None:
        stmt = stmt.where(StoredSample.model_name == model_name)
    if since is not None:
        stmt = stmt.where(StoredSample.created_at >= since)
    stmt = stmt.order_by(net.desc(), StoredSample.up_votes.desc(), StoredSample.id.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())


async def pick_unrated_sample(
    session: AsyncSession, *, user_id: int, chat_id: int | None, after_id: int | None = None
) -> StoredSample | None:
    """A delivered sample this user has not rated and did not write, fewest ratings first.

    ``chat_id`` keeps the choice within one chat; None draws from every chat, but only among
    samples their authors shared (a sample is otherwise visible only where it was made).
    ``after_id``: the sample shown last ("next"): the one after it in that order, wrapping
    round to the first, and never the same one again while there is another.
    """
    rated = select(Rating.sample_id).where(Rating.user_id == user_id)
    stmt = select(StoredSample).where(
        StoredSample.delivered.is_(True), StoredSample.user_id != user_id, StoredSample.id.not_in(rated)
    )
    if chat_id is not None:
        stmt = stmt.where(StoredSample.chat_id == chat_id)
    else:
        stmt = stmt.where(StoredSample.shared.is_(True))
    votes = StoredSample.up_votes + StoredSample.down_votes
    order = (votes.asc(), StoredSample.id.desc())
    if after_id is not None:
        shown = await session.get(StoredSample, after_id)
        if shown is not None:
            shown_votes = shown.up_votes + shown.down_votes
            later = (votes > shown_votes) | ((votes == shown_votes) & (StoredSample.id < after_id))
            found = await session.scalar(stmt.where(later).order_by(*order).limit(1))
            if found is not None:
                return found
        stmt = stmt.where(StoredSample.id != after_id)  # wrap round, without the one just shown
    return await session.scalar(stmt.order_by(*order).limit(1))


async def user_stats(session: AsyncSession, *, user_id: int) -> UserStats:
    """Counts about one user: samples made, ratings given and received."""
    samples_row = (
        await session.execute(
            select(
                func.count(StoredSample.id),
                func.coalesce(func.sum(StoredSample.up_votes), 0),
                func.coalesce(func.sum(StoredSample.down_votes), 0),
                func.min(StoredSample.created_at),
                func.max(StoredSample.created_at),
            ).where(StoredSample.user_id == user_id)
        )
    ).one()
    given = await session.scalar(select(func.count()).where(Rating.user_id == user_id))
    return UserStats(
        samples=int(samples_row[0]),
        ratings_given=int(given or 0),
        up_received=int(samples_row[1]),
        down_received=int(samples_row[2]),
        first_sample_at=samples_row[3],
        last_sample_at=samples_row[4],
    )


async def admin_stats(session: AsyncSession, *, now: datetime | None = None) -> AdminStats:
    """Whole-database counts, with a per-model breakdown."""
    now = now or utcnow()
    users = await session.scalar(select(func.count()).select_from(User))
    chat_rows = (await session.execute(select(Chat.type, func.count()).group_by(Chat.type))).all()
    totals = (
        await session.execute(
            select(
                func.count(StoredSample.id),
                func.count().filter(StoredSample.delivered.is_(True)),
                func.count().filter(StoredSample.created_at >= now - timedelta(days=1)),
                func.coalesce(func.sum(StoredSample.up_votes), 0),
                func.coalesce(func.sum(StoredSample.down_votes), 0),
            )
        )
    ).one()
    ratings = await session.scalar(select(func.count()).select_from(Rating))
    model_rows = (
        await session.execute(
            select(
                StoredSample.model_name,
                func.count(),
                func.coalesce(func.sum(StoredSample.up_votes), 0),
                func.coalesce(func.sum(StoredSample.down_votes), 0),
                func.avg(StoredSample.generation_ms),
            )
            .group_by(StoredSample.model_name)
            .order_by(func.count().desc(), StoredSample.model_name)
        )
    ).all()
    return AdminStats(
        users=int(users or 0),
        chats={str(kind): int(count) for kind, count in chat_rows},
        samples=int(totals[0]),
        delivered_samples=int(totals[1]),
        samples_last_24h=int(totals[2]),
        ratings=int(ratings or 0),
        up_votes=int(totals[3]),
        down_votes=int(totals[4]),
        models=[
            ModelStats(str(name), int(count), int(up), int(down), float(avg or 0.0))
            for name, count, up, down, avg in model_rows
        ],
    )
