"""Create the async engine and session factory from a database URL.

SQLite is the default backend, and it needs care to behave well with many concurrent
handlers: every connection gets WAL mode (readers never block the writer), a busy timeout
(a writer waits for the lock instead of failing at once) and foreign keys (off by default in
SQLite, and the schema relies on ON DELETE CASCADE). SQLAlchemy's pysqlite/aiosqlite drivers
also issue their own lazy BEGIN, which breaks transactional DDL and makes read-then-write
transactions fail with "database is locked"; we take BEGIN over so that a write unit of work
can start with BEGIN IMMEDIATE (see ``bot.db.transaction``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, event, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.db import sqlite_driver

# Execution option a unit of work sets to ask SQLite for BEGIN IMMEDIATE (take the write lock
# up front, so the busy timeout applies and no deferred read->write upgrade can fail).
SQLITE_WRITE_OPTION = "lstmbot_sqlite_write"
# Execution option of a read whose statements need not share one snapshot: no BEGIN (each
# statement is its own transaction in SQLite's autocommit mode), so no COMMIT trip either.
SQLITE_NO_SNAPSHOT_OPTION = "lstmbot_sqlite_no_snapshot"
# How long a SQLite connection waits for the write lock before giving up (ms).
SQLITE_BUSY_TIMEOUT_MS = 10_000
# How long a PostgreSQL statement waits for a lock before giving up (ms): a table locked by
# someone else is an outage to report ("try again shortly"), not a reason to hang a handler.
POSTGRES_LOCK_TIMEOUT_MS = 10_000


def is_sqlite(url: str | URL) -> bool:
    """Whether the URL points at SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str | URL) -> Path | None:
    """The database file of a SQLite URL, or None for in-memory databases."""
    parsed = make_url(url)
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_engine(
    url: str | URL, *, foreign_keys: bool = True, lock_timeout: bool = True, **kwargs: Any
) -> AsyncEngine:
    """Create an async engine for ``url``; SQLite connections are configured as described above.

    ``foreign_keys=False`` is for migrations only: SQLite batch mode copies and drops tables,
    and with foreign keys on, dropping a parent table would cascade-delete the children's rows.
    ``lock_timeout=False`` (migrations too) lets PostgreSQL statements wait for locks as long as
    it takes, e.g. for another replica's migration. Extra keyword arguments go to
    ``sqlalchemy.ext.asyncio.create_async_engine``.
    """
    if not is_sqlite(url):
        engine = create_async_engine(url, **kwargs)
        if lock_timeout:
            _configure_postgres(engine)
        return engine
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, **kwargs)
    _configure_sqlite(engine, foreign_keys=foreign_keys)
    return engine


def _configure_postgres(engine: AsyncEngine) -> None:
    """Give every PostgreSQL connection the lock timeout (read at connect time).

    It is a connection start-up setting, not a SET statement: a SET in the first transaction
    would be undone when that transaction rolls back.
    """

    @event.listens_for(engine.sync_engine, "do_connect")
    def _on_connect(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        settings = cparams.setdefault("server_settings", {})
        settings["lock_timeout"] = str(int(POSTGRES_LOCK_TIMEOUT_MS))


def _configure_sqlite(engine: AsyncEngine, *, foreign_keys: bool) -> None:
    """Install the one-hop driver, the per-connection pragmas and our own BEGIN on a SQLite engine."""

    @event.listens_for(engine.sync_engine, "do_connect")
    def _one_hop(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        # aiosqlite's connection, but one thread round trip per statement (sqlite_driver.py).
        cparams["async_creator_fn"] = sqlite_driver.connect

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop the driver from emitting its own (deferred, DML-only) BEGIN; _on_begin does it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL is durable against application crashes and much faster than FULL.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get(SQLITE_NO_SNAPSHOT_OPTION):
            return
        # Handed straight to the driver, which holds it for the first statement's trip: through
        # exec_driver_sql, a statement's whole machinery ran for a BEGIN that goes nowhere yet.
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite_driver.OneHopConnection)
        driver.hold_begin("BEGIN IMMEDIATE" if options.get(SQLITE_WRITE_OPTION) else "BEGIN")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A session factory; objects stay readable after commit (handlers use them afterwards)."""
    return async_sessionmaker(engine, expire_on_commit=False)
