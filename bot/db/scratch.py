"""Throw-away databases for tests and benchmarks.

``temporary_database(base_url)`` yields the URL of an empty database and removes it after:
a fresh file in a temporary folder for SQLite, or ``CREATE DATABASE lstmbot_<tag>_<random>``
on the PostgreSQL server of ``base_url`` (through its maintenance connection) followed by
``DROP DATABASE .. WITH (FORCE)``. Separate databases keep concurrent test sessions that share
one server from ever seeing each other's tables.
"""

from __future__ import annotations

import re
import secrets
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import URL, make_url, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

_TAG = re.compile(r"^[a-z0-9_]{1,20}$")


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


async def _admin_execute(url: URL, sql: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction, hence AUTOCOMMIT.
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)
    try:
        async with admin.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await admin.dispose()


async def create_postgres_database(base_url: str | URL, *, tag: str = "test") -> str:
    """Create an empty database named ``lstmbot_<tag>_<random>`` on ``base_url``'s server."""
    if not _TAG.match(tag):
        raise ValueError("tag must be 1-20 lower-case letters, digits or underscores")
    url = make_url(base_url)
    name = f"lstmbot_{tag}_{secrets.token_hex(6)}"
    await _admin_execute(url, f'CREATE DATABASE "{name}"')
    return _render(url.set(database=name))


async def drop_postgres_database(database_url: str | URL) -> None:
    """Drop a database made by ``create_postgres_database``, closing its connections first."""
    url = make_url(database_url)
    name = url.database or ""
    if not name.startswith("lstmbot_"):
        raise ValueError(f"refusing to drop {name!r}: not a scratch database")
    # Connect to the server's maintenance database: one cannot drop the database one is in.
    await _admin_execute(url.set(database="postgres"), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def temporary_database(base_url: str | URL, *, tag: str = "test") -> AsyncIterator[str]:
    """Yield the URL of a new, empty database on ``base_url``'s server; drop it afterwards."""
    url = make_url(base_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"lstmbot_{tag}_") as folder:
            yield _render(url.set(database=str(Path(folder) / "db.sqlite3")))
        return
    if backend != "postgresql":
        raise ValueError(f"unsupported backend {backend!r}")
    scratch = await create_postgres_database(url, tag=tag)
    try:
        yield scratch
    finally:
        await drop_postgres_database(scratch)
