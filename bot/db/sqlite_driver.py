"""aiosqlite with one thread hop per statement instead of four.

aiosqlite runs each sqlite3 call on the connection's own thread, and SQLAlchemy's adapter
makes four such calls per statement: create a cursor, execute, fetch all rows, close. Each
call is a round trip between the event loop and that thread, and under load each one also
waits for the GIL, while the statement's transaction holds SQLite's one write lock. In a
200-seed burst the bot made ~11,900 round trips for 107 samples and 100 ratings.

`OneHopConnection.cursor()` returns a `OneHopCursor` that does, in a single round trip,
what the four did: open a sqlite3 cursor, execute, fetch the first rows (up to `PREFETCH`)
and close it when no rows are left. Fetching then reads those rows without a round trip; a
larger result (a streamed export) keeps its cursor open and fetches the rest in chunks, so
memory stays bounded. It plugs in through SQLAlchemy's documented hook: the aiosqlite
dialect's ``async_creator_fn`` connect argument (set by `bot.db.engine`).

A transaction's edges cost no trip of their own either: the BEGIN that `bot.db.engine` issues is
held and run in the same trip as the transaction's first statement (a transaction with no
statement never begins), and the rollback SQLAlchemy's pool sends when a connection comes back
after a commit is skipped when no transaction is open (the connection's thread says so after
each trip), as is the COMMIT of a read that ran without one (`Database.run(snapshot=False)`:
no BEGIN, each statement its own transaction). A returning user's seed went from 24 trips to 13,
then to 10.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

import aiosqlite

PREFETCH = 256  # rows fetched with the statement itself; more come in chunks of this size
Row = Any  # sqlite3 rows (tuples unless a row factory is set)


class OneHopCursor:
    """An aiosqlite-compatible cursor: execute + first fetch + close in one round trip."""

    arraysize = 1

    def __init__(self, connection: OneHopConnection) -> None:
        self._connection = connection
        self._open: sqlite3.Cursor | None = None  # only while a result still has rows to fetch
        self._rows: deque[Row] = deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    async def __aenter__(self) -> OneHopCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> OneHopCursor:
        """Run one statement and take its first rows, in one trip to the connection's thread
        (a BEGIN is held for the next statement's trip)."""
        await self.close()
        if sql in BEGINS and not parameters:
            self._connection.hold_begin(sql)
            self._take(None, -1, None, [], None)
            return self
        result = await self._connection.run_statement(self._execute_here, sql, parameters, many=False)
        self._take(*result)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Iterable[Any]) -> OneHopCursor:
        """Run one statement per parameter set, in one trip."""
        await self.close()
        result = await self._connection.run_statement(self._execute_here, sql, seq_of_parameters, many=True)
        self._take(*result)
        return self

    def _execute_here(
        self, sql: str, parameters: Any, *, many: bool
    ) -> tuple[Any, int, int | None, list[Row], sqlite3.Cursor | None]:
        # On the connection's thread: the only place a sqlite3 cursor is touched.
        conn = self._connection.sqlite
        cursor = conn.executemany(sql, parameters) if many else conn.execute(sql, parameters)
        description, rowcount, lastrowid = cursor.description, cursor.rowcount, cursor.lastrowid
        rows = cursor.fetchmany(PREFETCH) if description else []
        if len(rows) < PREFETCH:
            cursor.close()
            return description, rowcount, lastrowid, rows, None
        return description, rowcount, lastrowid, rows, cursor

    def _take(
        self,
        description: Any,
        rowcount: int,
        lastrowid: int | None,
        rows: list[Row],
        cursor: sqlite3.Cursor | None,
    ) -> None:
        self.description, self.rowcount, self.lastrowid = description, rowcount, lastrowid
        self._rows = deque(rows)
        self._open = cursor

    async def _fetch_more(self) -> bool:
        """Another chunk from a still-open result; False when it is exhausted (then closed)."""
        if self._open is None:
            return False
        rows = await self._connection.call(self._open.fetchmany, PREFETCH)
        self._rows.extend(rows)
        if len(rows) < PREFETCH:
            await self.close()
        return bool(rows)

    async def fetchone(self) -> Row | None:
        """The next row, or None."""
        if not self._rows:
            await self._fetch_more()
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Row]:
        """Up to `size` rows (default `arraysize`)."""
        size = self.arraysize if size is None else size
        while len(self._rows) < size and await self._fetch_more():
            pass
        return [self._rows.popleft() for _ in range(min(size, len(self._rows)))]

    async def fetchall(self) -> list[Row]:
        """Every remaining row."""
        while await self._fetch_more():
            pass
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        """Close the sqlite3 cursor if a result was left open (a trip only then)."""
        if self._open is not None:
            cursor, self._open = self._open, None
            await self._connection.call(cursor.close)


# The statements bot.db.engine begins a transaction with (held for the next trip).
BEGINS = frozenset({"BEGIN", "BEGIN IMMEDIATE"})


class OneHopConnection(aiosqlite.Connection):
    """aiosqlite's connection whose cursors are `OneHopCursor`s, and whose transactions begin
    in their first statement's trip."""

    _held_begin: str | None = None  # a BEGIN not run yet: it goes with the next statement
    _in_transaction = False  # as the connection's thread last saw it

    def hold_begin(self, sql: str) -> None:
        """Run `sql` (a BEGIN) first thing in the next statement's trip."""
        self._held_begin = sql

    async def run_statement(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """`fn(*args, **kwargs)` on the connection's thread, after the held BEGIN if any."""
        begin, self._held_begin = self._held_begin, None
        return await self.call(self._begin_then, begin, partial(fn, *args, **kwargs))

    def _begin_then(self, begin: str | None, fn: Callable[[], Any]) -> Any:
        # On the connection's thread.
        try:
            if begin is not None:
                self._conn.execute(begin)
            return fn()
        finally:
            self._in_transaction = self._conn.in_transaction

    async def commit(self) -> None:
        """Commit (no trip when no transaction is open: it never began, or its statements ran
        on their own in autocommit mode)."""
        self._held_begin = None
        if self._in_transaction:
            await self.call(self._end, self._conn.commit)

    async def rollback(self) -> None:
        """Roll back (no trip when no transaction is open: the pool's reset after a commit)."""
        self._held_begin = None
        if self._in_transaction:
            await self.call(self._end, self._conn.rollback)

    def _end(self, how: Callable[[], None]) -> None:
        # On the connection's thread.
        try:
            how()
        finally:
            self._in_transaction = self._conn.in_transaction

    def cursor(self) -> OneHopCursor:  # type: ignore[override]  # a cursor at once, no round trip
        return OneHopCursor(self)

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The sqlite3 connection (to be used on the connection's thread only)."""
        return self._conn

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run `fn(*args, **kwargs)` on the connection's thread."""
        return await self._execute(partial(fn, *args, **kwargs))  # type: ignore[no-untyped-call]


def connect(database: str, **kwargs: Any) -> OneHopConnection:
    """`aiosqlite.connect` for `OneHopConnection` (the dialect's ``async_creator_fn``)."""
    connection = OneHopConnection(partial(sqlite3.connect, database, **kwargs), iter_chunk_size=64)
    connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own connections
    return connection
