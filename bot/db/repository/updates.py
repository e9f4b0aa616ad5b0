"""Telegram updates already handled, so a redelivered one is not applied twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Chat, ProcessedUpdate, User, utcnow
from bot.db.repository.base import of_dialect, per_dialect, rowcount, table_of

# How long claimed update ids are kept (Telegram keeps unacknowledged updates up to 24 hours).
UPDATE_CLAIM_TTL = timedelta(days=2)


# Prune old claims on every N-th update id, so no scheduler is needed.
_PRUNE_EVERY = 500


_UPDATES = table_of(ProcessedUpdate)
_CLAIM = per_dialect(
    lambda insert: (
        insert(_UPDATES)
        .values(update_id=bindparam("claimed"), handled_at=bindparam("at"))
        .on_conflict_do_nothing(index_elements=[_UPDATES.c.update_id])
        .returning(_UPDATES.c.update_id)
    )
)
_HANDLED = select(ProcessedUpdate.update_id).where(ProcessedUpdate.update_id == bindparam("asked"))
# The update's claim (as a flag), its user and its chat: one row when the user is stored.
_ASKER = (
    select(User, Chat, exists().where(ProcessedUpdate.update_id == bindparam("asked")))
    .outerjoin(Chat, Chat.telegram_id == bindparam("chat_telegram_id"))
    .where(User.telegram_id == bindparam("user_telegram_id"))
)


async def claim_update(session: AsyncSession, *, update_id: int) -> bool:
    """Mark Telegram update ``update_id`` as handled; False when it already was.

    Call it first in the same unit of work as the update's effect: if the transaction rolls
    back, the claim goes with it, and a concurrent duplicate waits for (PostgreSQL) or is
    serialised behind (SQLite) the first and then sees the claim.
    """
    result = await session.execute(of_dialect(session, _CLAIM), {"claimed": update_id, "at": utcnow()})
    claimed = result.scalar_one_or_none() is not None
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
    return (await session.execute(_HANDLED, {"asked": update_id})).first() is not None


@dataclass(frozen=True, slots=True)
class AskerRows:
    """What an update's first read finds: whether it was handled, and its stored user and chat."""

    handled: bool
    user: User | None
    chat: Chat | None  # None also when the update has no chat


async def asker_rows(
    session: AsyncSession, *, user_telegram_id: int, chat_telegram_id: int | None, update_id: int | None
) -> AskerRows:
    """Whether update `update_id` was handled (False for None), with the user and chat rows of
    these Telegram ids: one statement for a stored user (every reply reads this), two for a
    newcomer."""
    params = {"asked": update_id, "chat_telegram_id": chat_telegram_id, "user_telegram_id": user_telegram_id}
    row = (await session.execute(_ASKER, params)).one_or_none()
    if row is not None:
        user, chat, handled = row
        return AskerRows(bool(handled), user, chat)
    handled = update_id is not None and await update_handled(session, update_id=update_id)
    return AskerRows(handled, None, None)
