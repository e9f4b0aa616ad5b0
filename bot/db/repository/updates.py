"""Telegram updates already handled, so a redelivered one is not applied twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Chat, ProcessedUpdate, User, utcnow
from bot.db.repository.base import per_dialect, table_of
from bot.db.repository.users import CHATS, USERS, chat_of, user_of
from bot.db.trip import Trip, in_session

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
_HANDLED = select(_UPDATES.c.update_id).where(_UPDATES.c.update_id == bindparam("asked"))
# The update's claim (as a flag), its user's columns and its chat's: one row when the user is
# stored. Columns, not entities: the statement runs in a trip (bot/db/trip.py), the rows are
# built by users.user_of and chat_of (detached, as a session leaves what it loaded).
_USER_COLUMNS = len(USERS.c)
_ASKER = (
    select(*USERS.c, *CHATS.c, exists().where(_UPDATES.c.update_id == bindparam("asked")))
    .select_from(USERS.outerjoin(CHATS, CHATS.c.telegram_id == bindparam("chat_telegram_id")))
    .where(USERS.c.telegram_id == bindparam("user_telegram_id"))
)


_PRUNE = delete(_UPDATES).where(_UPDATES.c.handled_at < bindparam("cutoff"))


def claim(trip: Trip, *, update_id: int) -> bool:
    """Mark Telegram update ``update_id`` as handled; False when it already was.

    Call it first in the same unit of work as the update's effect: if the transaction rolls
    back, the claim goes with it, and a concurrent duplicate waits for (PostgreSQL) or is
    serialised behind (SQLite) the first and then sees the claim.
    """
    claimed = bool(trip.rows(_CLAIM[trip.dialect], {"claimed": update_id, "at": utcnow()}))
    if claimed and update_id % _PRUNE_EVERY == 0:
        prune(trip)
    return claimed


def prune(trip: Trip, *, older_than: timedelta = UPDATE_CLAIM_TTL, now: datetime | None = None) -> int:
    """Delete update claims older than ``older_than``; returns how many went."""
    return trip.count(_PRUNE, {"cutoff": (now or utcnow()) - older_than})


async def claim_update(session: AsyncSession, *, update_id: int) -> bool:
    """`claim` inside a session's unit of work."""
    return await in_session(session, partial(claim, update_id=update_id))


async def prune_processed_updates(
    session: AsyncSession, *, older_than: timedelta = UPDATE_CLAIM_TTL, now: datetime | None = None
) -> int:
    """`prune` inside a session's unit of work."""
    return await in_session(session, partial(prune, older_than=older_than, now=now))


async def update_handled(session: AsyncSession, *, update_id: int) -> bool:
    """`handled` inside a session's unit of work."""
    return await in_session(session, partial(handled, update_id=update_id))


@dataclass(frozen=True, slots=True)
class AskerRows:
    """What an update's first read finds: whether it was handled, and its stored user and chat."""

    handled: bool
    user: User | None
    chat: Chat | None  # None also when the update has no chat


def asker(
    trip: Trip, *, user_telegram_id: int, chat_telegram_id: int | None, update_id: int | None
) -> AskerRows:
    """Whether update `update_id` was handled (False for None), with the user and chat rows of
    these Telegram ids: one statement for a stored user (every reply reads this), two for a
    newcomer. The rows are read-only copies (built, not loaded by a session)."""
    params = {"asked": update_id, "chat_telegram_id": chat_telegram_id, "user_telegram_id": user_telegram_id}
    found = trip.rows(_ASKER, params)
    if found:
        ((*values, was_handled),) = found
        user, chat = values[:_USER_COLUMNS], values[_USER_COLUMNS:]
        return AskerRows(bool(was_handled), user_of(user), None if chat[0] is None else chat_of(chat))
    return AskerRows(update_id is not None and handled(trip, update_id=update_id), None, None)


def handled(trip: Trip, *, update_id: int) -> bool:
    """Whether Telegram update ``update_id`` was claimed (its outcome stored) already."""
    return bool(trip.rows(_HANDLED, {"asked": update_id}))


async def asker_rows(
    session: AsyncSession, *, user_telegram_id: int, chat_telegram_id: int | None, update_id: int | None
) -> AskerRows:
    """`asker` inside a session's unit of work."""
    return await in_session(
        session,
        partial(
            asker, user_telegram_id=user_telegram_id, chat_telegram_id=chat_telegram_id, update_id=update_id
        ),
    )
