"""Telegram updates already handled, so a redelivered one is not applied twice."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    ProcessedUpdate,
    utcnow,
)
from bot.db.repository.base import dialect_insert, rowcount

# How long claimed update ids are kept (Telegram keeps unacknowledged updates up to 24 hours).
UPDATE_CLAIM_TTL = timedelta(days=2)


# Prune old claims on every N-th update id, so no scheduler is needed.
_PRUNE_EVERY = 500


async def claim_update(session: AsyncSession, *, update_id: int) -> bool:
    """Mark Telegram update ``update_id`` as handled; False when it already was.

    Call it first in the same unit of work as the update's effect: if the transaction rolls
    back, the claim goes with it, and a concurrent duplicate waits for (PostgreSQL) or is
    serialised behind (SQLite) the first and then sees the claim.
    """
    stmt = (
        dialect_insert(session, ProcessedUpdate)
        .values(update_id=update_id, handled_at=utcnow())
        .on_conflict_do_nothing(index_elements=[ProcessedUpdate.update_id])
        .returning(ProcessedUpdate.update_id)
    )
    claimed = (await session.execute(stmt)).scalar_one_or_none() is not None
    if claimed and update_id % _PRUNE_EVERY == 0:
        await prune_processed_updates(session)
    return claimed


async def prune_processed_updates(
    session: AsyncSession, *, older_than: timedelta = UPDATE_CLAIM_TTL, now: datetime | None = None
) -> int:
    """Delete update claims older than ``older_than``; returns how many went."""
    cutoff = (now or utcnow()) - older_than
    result = await session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.handled_at < cutoff))
    return rowcount(result)


async def update_handled(session: AsyncSession, *, update_id: int) -> bool:
    """Whether Telegram update ``update_id`` was claimed (its outcome stored) already."""
    return await session.get(ProcessedUpdate, update_id) is not None
