"""The one-hop SQLite driver: one trip to the connection's thread per statement, same results."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.db.database import Database
from bot.db.engine import SQLITE_WRITE_OPTION, create_engine
from bot.db.sqlite_driver import PREFETCH, OneHopConnection


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every function sent to a connection's thread from now on."""
    sent: list[str] = []
    original: Callable[..., Any] = aiosqlite.Connection._execute

    async def counting(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(getattr(fn, "func", fn), "__name__", "?"))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return sent


async def test_engine_connections_are_one_hop(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, OneHopConnection)


async def test_a_select_is_one_trip(engine: AsyncEngine, trips: list[str]) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO t (name) VALUES ('a'), ('b')"))
        trips.clear()
        rows = (await conn.execute(text("SELECT id, name FROM t ORDER BY id"))).all()
    assert rows == [(1, "a"), (2, "b")]
    # aiosqlite's own cursor makes four: cursor, execute, fetchall, close. Then the connection
    # closes its open transaction: one trip for the rollback.
    assert trips == ["_begin_then", "_end"]


async def test_orm_insert_returns_its_key_and_errors_stay_sqlalchemy_errors(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        result = await session.execute(text("INSERT INTO t (name) VALUES ('x')"))
        assert result.lastrowid == 1
        with pytest.raises(IntegrityError):
            await session.execute(text("INSERT INTO t (name) VALUES ('x')"))


async def test_executemany_inserts_every_row(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        table = text("INSERT INTO t (name) VALUES (:name)")
        await conn.execute(table, [{"name": f"n{i}"} for i in range(10)])
        assert await conn.scalar(text("SELECT count(*) FROM t")) == 10


@pytest.mark.parametrize("rows", [PREFETCH - 1, PREFETCH, 3 * PREFETCH + 5])
async def test_streamed_results_are_complete_and_in_order(engine: AsyncEngine, rows: int) -> None:
    async with engine.begin() as conn:
        names = [{"name": f"n{i:05d}"} for i in range(rows)]
        await conn.execute(text("INSERT INTO t (name) VALUES (:name)"), names)
    async with engine.connect() as conn:
        got = [row[0] async for row in await conn.stream(text("SELECT name FROM t ORDER BY id"))]
        assert got == [f"n{i:05d}" for i in range(rows)]
        plain = (await conn.execute(text("SELECT name FROM t ORDER BY id"))).scalars().all()
        assert plain == got
        partial = await conn.stream(text("SELECT name FROM t ORDER BY id"))
        first = await partial.fetchmany(3)
        await partial.close()  # a result left half-read closes its cursor
        assert [row[0] for row in first] == got[:3]
        # The connection stays usable after a half-read result.
        assert await conn.scalar(text("SELECT count(*) FROM t")) == rows


async def test_orm_round_trip_through_sqlalchemy_core(engine: AsyncEngine) -> None:
    from sqlalchemy import Column, Integer, MetaData, String, Table

    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("name", String))
    async with engine.begin() as conn:
        await conn.execute(insert(table), [{"name": "p"}, {"name": "q"}])
        names = (await conn.execute(select(table.c.name).order_by(table.c.id))).scalars().all()
    assert names == ["p", "q"]


async def test_a_transaction_begins_in_its_first_statements_trip(
    engine: AsyncEngine, trips: list[str]
) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
        await conn.execute(text("INSERT INTO t (name) VALUES ('b')"))
    # BEGIN travels with the first INSERT; the pool's reset after the commit costs no trip.
    assert trips == ["_begin_then", "_begin_then", "_end"]
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM t")) == 2


async def test_a_transaction_without_statements_makes_no_trip(engine: AsyncEngine, trips: list[str]) -> None:
    async with engine.begin():
        pass
    async with AsyncSession(engine) as session:
        await session.connection()
        await session.commit()
    assert trips == []


async def test_a_read_without_a_snapshot_is_one_trip_and_a_write_still_commits(
    tmp_path: Path, trips: list[str]
) -> None:
    db = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        await db.run(lambda session: session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)")))
        await db.run(lambda session: session.execute(text("INSERT INTO t (id) VALUES (7)")))
        trips.clear()

        async def read(session: AsyncSession) -> list[int]:
            return list((await session.scalars(text("SELECT id FROM t"))).all())

        assert await db.run(read, write=False, snapshot=False) == [7]
        assert trips == ["_begin_then"]  # no BEGIN before it, no COMMIT after it
        trips.clear()
        assert await db.run(read, write=False) == [7]
        assert trips == ["_begin_then", "_end"]  # a snapshot: BEGIN with the SELECT, then COMMIT
        trips.clear()
        await db.run(lambda session: session.execute(text("INSERT INTO t (id) VALUES (8)")))
        assert trips == ["_begin_then", "_end"]  # a write still commits
        assert await db.run(read, write=False, snapshot=False) == [7, 8]
        with pytest.raises(ValueError, match="transaction"):
            await db.run(read, write=True, snapshot=False)
    finally:
        await db.dispose()


async def test_a_rollback_still_undoes_the_transaction(engine: AsyncEngine, trips: list[str]) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO t (name) VALUES ('gone')"))
        await conn.rollback()
        assert trips[-1] == "_end"  # an open transaction: the rollback does travel
        assert await conn.scalar(text("SELECT count(*) FROM t")) == 0


async def test_a_held_begin_that_fails_raises_at_the_statement_and_leaves_the_connection_usable(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'busy.sqlite3'}"
    holder, waiter = create_engine(url), create_engine(url)
    try:
        async with holder.begin() as conn:
            await conn.execute(text("CREATE TABLE u (id INTEGER PRIMARY KEY)"))
        async with holder.connect() as locked, waiter.connect() as conn:
            await conn.exec_driver_sql("PRAGMA busy_timeout=0")  # fail at once rather than wait
            await conn.commit()
            for c in (locked, conn):
                await c.execution_options(**{SQLITE_WRITE_OPTION: True})
            await locked.execute(text("INSERT INTO u VALUES (1)"))  # holds the write lock
            with pytest.raises(OperationalError, match="locked"):
                await conn.execute(text("INSERT INTO u VALUES (2)"))  # its BEGIN IMMEDIATE fails
            await conn.rollback()
            await locked.commit()
            await conn.execute(text("INSERT INTO u VALUES (2)"))
            await conn.commit()
        async with waiter.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM u")) == 2
    finally:
        await holder.dispose()
        await waiter.dispose()
