"""Run a unit of work in its own transaction, retrying when the database asks us to.

Concurrent handlers can collide: SQLite allows one writer at a time and reports
"database is locked" when the busy timeout runs out, and PostgreSQL may abort a transaction
with a serialization failure or a deadlock. Those are transient, so the whole unit of work is
retried with a short jittered back-off; anything else propagates at once. Because the unit
is re-run from the start, it must not have side effects outside the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.engine import SQLITE_WRITE_OPTION

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[T]]
RetryHook = Callable[[int, BaseException], None]

log = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 6
# PostgreSQL SQLSTATEs that mean "try the transaction again".
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
_SQLITE_BUSY_MESSAGES = ("database is locked", "database is busy", "database table is locked")


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` is a transient concurrency error worth retrying the transaction for."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    message = str(orig).lower()
    return any(text in message for text in _SQLITE_BUSY_MESSAGES)


def backoff_s(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential, capped, with full jitter."""
    return random.uniform(0.0, min(0.5, 0.01 * 2**attempt))


async def run_in_transaction(
    sessions: async_sessionmaker[AsyncSession],
    work: Work[T],
    *,
    write: bool = True,
    attempts: int = DEFAULT_ATTEMPTS,
    on_retry: RetryHook | None = None,
    write_lock: asyncio.Lock | None = None,
) -> T:
    """Run ``work(session)`` in a fresh session and commit; retry on transient errors.

    ``write=True`` makes SQLite take its write lock at BEGIN (BEGIN IMMEDIATE) so that
    concurrent writers queue on the busy timeout instead of failing mid-transaction; it has no
    effect on PostgreSQL. ``write_lock``, when given, is held around each write attempt: for
    SQLite, queueing writers of one process on an asyncio lock is far faster than letting
    them poll SQLite's busy handler, which sleeps up to 100 ms between tries.
    ``on_retry(attempt, exc)`` is called before each retry (for metrics).
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    lock = write_lock if write and write_lock is not None else contextlib.nullcontext()
    for attempt in range(1, attempts + 1):
        try:
            async with lock, sessions() as session:
                await session.connection(execution_options={SQLITE_WRITE_OPTION: write})
                result = await work(session)
                await session.commit()
                return result
        except DBAPIError as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            log.debug("transient database error (attempt %d/%d): %s", attempt, attempts, exc)
            if on_retry is not None:
                on_retry(attempt, exc)
        await asyncio.sleep(backoff_s(attempt))
    raise AssertionError("unreachable")  # the loop either returns or raises
