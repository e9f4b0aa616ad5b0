"""The retry policy for a unit of work (``Database.run`` runs the loop): what is transient, how long to wait.

Concurrent handlers can collide: SQLite allows one writer at a time and reports
"database is locked" when the busy timeout runs out, and PostgreSQL may abort a transaction
with a serialization failure or a deadlock. Those are transient, so the whole unit of work is
retried with a short jittered back-off; anything else propagates at once. Because the unit
is re-run from the start, it must not have side effects outside the session.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

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
