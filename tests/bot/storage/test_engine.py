"""Engine set-up (SQLite pragmas, BEGIN handling) and the retrying unit of work."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.database import Database
from bot.db.engine import SQLITE_BUSY_TIMEOUT_MS, create_engine, sqlite_file
from bot.db.models import Base, User
from bot.db.transaction import is_retryable
from bot.settings import DEFAULT_DATABASE_URL
from tests.bot.storage.factories import make_user


async def test_sqlite_pragmas_on_every_connection(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}")
    try:
        # Hold two connections at once so that the pool has to open two.
        async with engine.connect() as first, engine.connect() as second:
            for conn in (first, second):
                assert (await conn.scalar(text("PRAGMA journal_mode"))) == "wal"
                assert (await conn.scalar(text("PRAGMA foreign_keys"))) == 1
                assert (await conn.scalar(text("PRAGMA busy_timeout"))) == SQLITE_BUSY_TIMEOUT_MS
    finally:
        await engine.dispose()


async def test_migration_engine_can_switch_foreign_keys_off(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}", foreign_keys=False)
    try:
        async with engine.connect() as conn:
            assert (await conn.scalar(text("PRAGMA foreign_keys"))) == 0
    finally:
        await engine.dispose()


async def test_default_url_creates_the_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_file(DEFAULT_DATABASE_URL) == Path("data/lstmbot.sqlite3")
    db = Database.from_url(DEFAULT_DATABASE_URL)
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await db.dispose()
    assert (tmp_path / "data" / "lstmbot.sqlite3").is_file()


def test_sqlite_file_for_memory_urls() -> None:
    assert sqlite_file("sqlite+aiosqlite://") is None
    assert sqlite_file("sqlite+aiosqlite:///:memory:") is None


def _dbapi_error(cls: type[Exception], orig: BaseException) -> Exception:
    return cls("SELECT 1", {}, orig)


def test_is_retryable() -> None:
    assert is_retryable(_dbapi_error(OperationalError, sqlite3.OperationalError("database is locked")))
    busy = SimpleNamespace(sqlstate="40001")
    assert is_retryable(_dbapi_error(OperationalError, busy))  # type: ignore[arg-type]
    deadlock = SimpleNamespace(sqlstate="40P01")
    assert is_retryable(_dbapi_error(OperationalError, deadlock))  # type: ignore[arg-type]
    assert not is_retryable(_dbapi_error(IntegrityError, sqlite3.IntegrityError("UNIQUE failed")))
    assert not is_retryable(ValueError("database is locked"))


async def test_database_run_retries_transient_errors(db: Database) -> None:
    calls: list[int] = []
    retries: list[int] = []

    async def work(session: AsyncSession) -> int:
        calls.append(1)
        user = await make_user(session)
        if len(calls) < 3:
            raise _dbapi_error(OperationalError, sqlite3.OperationalError("database is locked"))
        return user.telegram_id

    telegram_id = await db.run(work, on_retry=lambda attempt, exc: retries.append(attempt))
    assert len(calls) == 3 and retries == [1, 2]
    async with db.sessions() as session:
        # Failed attempts were rolled back: exactly one user exists.
        assert await session.scalar(select(func.count()).select_from(User)) == 1
        assert await session.scalar(select(User.telegram_id)) == telegram_id


async def test_database_run_gives_up_and_propagates(db: Database) -> None:
    async def locked(session: AsyncSession) -> None:
        raise _dbapi_error(OperationalError, sqlite3.OperationalError("database is locked"))

    with pytest.raises(OperationalError):
        await db.run(locked, attempts=2)

    calls: list[int] = []

    async def broken(session: AsyncSession) -> None:
        calls.append(1)
        raise _dbapi_error(IntegrityError, sqlite3.IntegrityError("CHECK constraint failed"))

    with pytest.raises(IntegrityError):
        await db.run(broken)
    assert calls == [1]  # not retried


async def test_failed_unit_of_work_rolls_back(db: Database) -> None:
    async def work(session: AsyncSession) -> None:
        await make_user(session)
        raise RuntimeError("handler bug")

    with pytest.raises(RuntimeError):
        await db.run(work)
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0


async def test_sqlite_read_modify_write_needs_no_retries(tmp_path: Path) -> None:
    """Write units take SQLite's lock at BEGIN, so read-then-write never fails midway.

    SQLite only: PostgreSQL runs READ COMMITTED and the repository locks rows where it matters.
    """
    db = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'rmw.sqlite3'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    retries: list[int] = []

    async def work(session: AsyncSession) -> None:
        count = await session.scalar(select(func.count()).select_from(User))
        await make_user(session, display_name=f"after {count}")

    # Without Database's in-process write lock: only BEGIN IMMEDIATE + busy timeout serialise.
    db.write_turns = None
    await asyncio.gather(*(db.run(work, on_retry=lambda a, e: retries.append(a)) for _ in range(30)))
    assert retries == []
    async with db.sessions() as session:
        names = set((await session.scalars(select(User.display_name))).all())
    await db.dispose()
    # Serialised: every unit saw the previous one's commit.
    assert names == {f"after {i}" for i in range(30)}


@pytest.mark.skipif(not os.environ.get("TEST_POSTGRES_URL"), reason="TEST_POSTGRES_URL is not set")
@pytest.mark.parametrize("backend", ["postgresql"])
async def test_postgres_connections_give_up_on_locks_and_migrations_do_not(database_url: str) -> None:
    """A statement waits at most POSTGRES_LOCK_TIMEOUT_MS for a lock (also after a rollback)."""
    from bot.db.engine import POSTGRES_LOCK_TIMEOUT_MS

    engine = create_engine(database_url)
    migrating = create_engine(database_url, lock_timeout=False)
    try:
        async with engine.connect() as conn:
            await conn.rollback()
            assert (
                await conn.execute(text("SHOW lock_timeout"))
            ).scalar() == f"{POSTGRES_LOCK_TIMEOUT_MS // 1000}s"
        async with migrating.connect() as conn:
            assert (await conn.execute(text("SHOW lock_timeout"))).scalar() == "0"
    finally:
        await engine.dispose()
        await migrating.dispose()
