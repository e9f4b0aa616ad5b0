"""One object the bot holds for its whole life: engine, session factory and unit-of-work runner.

Created in the Application's ``post_init`` and disposed in ``post_shutdown``. A handler's
database call is one line: ``await db.run(partial(repo.fn, kw=...))``; ``run`` opens the
session, commits, and retries the whole unit on transient errors (the policy: transaction.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from bot.db.engine import SQLITE_NO_SNAPSHOT_OPTION, SQLITE_WRITE_OPTION, create_engine, create_sessionmaker
from bot.db.sqlite_driver import OneHopConnection
from bot.db.transaction import DEFAULT_ATTEMPTS, RetryHook, Work, backoff_s, is_retryable
from bot.db.trip import SqliteStatements, TripUnit, as_dbapi_error, on_connection, run_here
from bot.db.write_turns import WriteTurns

T = TypeVar("T")
log = logging.getLogger(__name__)


class Database:
    """The bot's database handle."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)
        # SQLite has one writer at a time anyway; queue this process's writers in memory.
        sqlite = engine.dialect.name == "sqlite"
        self.write_turns: WriteTurns | None = WriteTurns() if sqlite else None
        # The reply path's statements compiled for SQLite, run in one trip (bot/db/trip.py).
        self.sqlite_statements = SqliteStatements(engine.dialect) if sqlite else None
        # SQLite's connections for trips (write: True or False), once used, with their drivers
        self._trips: dict[bool, tuple[AsyncConnection, OneHopConnection]] = {}
        self._trips_lock = asyncio.Lock()
        self._trip_pool: object = None  # the pool they came from (a disposed engine has a new one)

    @classmethod
    def from_url(cls, url: str | URL, **engine_kwargs: Any) -> Database:
        """Connect lazily to ``url`` (no I/O happens until the first query)."""
        return cls(create_engine(url, **engine_kwargs))

    @property
    def dialect(self) -> str:
        """The backend's name: "sqlite" or "postgresql"."""
        return self.engine.dialect.name

    async def run(
        self,
        work: Work[T],
        *,
        write: bool = True,
        snapshot: bool = True,
        admitting: bool = False,
        attempts: int = DEFAULT_ATTEMPTS,
        on_retry: RetryHook | None = None,
    ) -> T:
        """Run ``work(session)`` in a fresh session and commit; retry on transient errors.

        The unit is re-run from the start, so it must not have side effects outside the
        session. ``write=True`` makes SQLite take its write lock at BEGIN (BEGIN IMMEDIATE) so
        that concurrent writers queue on the busy timeout instead of failing mid-transaction
        (no effect on PostgreSQL); for SQLite this process's writers also queue in memory
        (``write_turns``), far faster than SQLite's busy handler, which sleeps up to 100 ms
        between tries. ``admitting=True`` marks a write that admits new work (a newcomer's first
        rows): on SQLite it waits behind the writes of work already under way (write_turns.py).
        ``snapshot=False`` (reads only) runs each statement on its own: for a unit of one
        statement, or whose statements need not agree; on SQLite it then costs no BEGIN and no
        COMMIT (the first look at every update is such a read).
        ``on_retry(attempt, exc)`` is called before each retry (for metrics).
        """
        if write and not snapshot:
            raise ValueError("a write needs its transaction")
        options = {SQLITE_WRITE_OPTION: write, SQLITE_NO_SNAPSHOT_OPTION: not snapshot}

        async def once() -> T:
            async with self.sessions() as session:
                await session.connection(execution_options=options)
                result = await work(session)
                await session.commit()
                return result

        return await self._retried(
            once, write=write, admitting=admitting, attempts=attempts, on_retry=on_retry
        )

    async def run_trip(
        self,
        unit: TripUnit[T],
        *,
        write: bool = True,
        admitting: bool = False,
        attempts: int = DEFAULT_ATTEMPTS,
        on_retry: RetryHook | None = None,
    ) -> T:
        """Run ``unit(trip)`` in one trip to SQLite's thread (bot/db/trip.py): a write in one
        transaction, a read (``write=False``) statement by statement, as ``run(snapshot=False)``.
        Retried like ``run``; ``admitting`` as there."""

        async def once() -> T:
            if self.sqlite_statements is None:
                async with self.engine.begin() as connection:
                    return await connection.run_sync(on_connection, unit)
            driver = await self._trip_connection(write=write)
            statements = self.sqlite_statements
            try:
                return await driver.call(run_here, driver.sqlite, statements, unit, write=write)  # type: ignore[no-any-return]
            except sqlite3.Error as exc:
                if not is_retryable(error := as_dbapi_error(exc)):
                    await self._drop_trip_connections(write=write)  # the next trip starts afresh
                raise error from exc

        retried = self._retried
        return await retried(once, write=write, admitting=admitting, attempts=attempts, on_retry=on_retry)

    async def _retried(
        self,
        once: Callable[[], Awaitable[T]],
        *,
        write: bool,
        admitting: bool,
        attempts: int,
        on_retry: RetryHook | None,
    ) -> T:
        """`once()` in this process's write turn (SQLite writes), retried on transient errors."""
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        for attempt in range(1, attempts + 1):
            turn = (
                self.write_turns.turn(admitting=admitting)
                if write and self.write_turns is not None
                else contextlib.nullcontext()
            )
            try:
                async with turn:
                    return await once()
            except DBAPIError as exc:
                if attempt == attempts or not is_retryable(exc):
                    raise
                log.debug("transient database error (attempt %d/%d): %s", attempt, attempts, exc)
                if on_retry is not None:
                    on_retry(attempt, exc)
            await asyncio.sleep(backoff_s(attempt))
        raise AssertionError("unreachable")  # the loop either returns or raises

    async def _trip_connection(self, *, write: bool = True) -> OneHopConnection:
        """SQLite's connection for write trips, or for reads: two, taken from the pool and kept
        (checking one out per trip cost more than the trip's statements). Writes take turns;
        reads have their own, so that a write waiting out another process's lock holds no read
        up (WAL readers never wait)."""
        async with self._trips_lock:
            pool = self.engine.sync_engine.pool
            if self._trip_pool is not pool:
                await self._drop_trip_connections()  # the engine was disposed: fresh connections only
                self._trip_pool = pool
            slot = self._trips.get(write)
            if slot is None:
                connection = await self.engine.connect()
                driver = (await connection.get_raw_connection()).driver_connection
                assert isinstance(driver, OneHopConnection)
                slot = self._trips[write] = (connection, driver)
            return slot[1]

    async def trace_sqlite_trips(self, trace: Callable[[str], object] | None) -> None:
        """Pass every statement SQLite's trips run to `trace` (None: stop), on the connections'
        threads; for tests and debugging (trips bypass SQLAlchemy's events)."""
        if self.sqlite_statements is not None:
            for write in (False, True):
                driver = await self._trip_connection(write=write)
                await driver.call(driver.sqlite.set_trace_callback, trace)

    async def _drop_trip_connections(self, *, write: bool | None = None) -> None:
        """Let the trip connections go (one kind, or both), discarded rather than pooled."""
        for kind in (False, True) if write is None else (write,):
            slot = self._trips.pop(kind, None)
            if slot is not None:
                with contextlib.suppress(Exception):
                    await slot[0].invalidate()
                with contextlib.suppress(Exception):
                    await slot[0].close()

    async def dispose(self) -> None:
        """Close every pooled connection."""
        trips, self._trips = self._trips, {}
        for connection, _driver in trips.values():
            await connection.close()
        await self.engine.dispose()
