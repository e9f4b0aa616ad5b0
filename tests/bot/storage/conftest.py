"""Fixtures for the storage tests: a database per test on SQLite, and on PostgreSQL too
when TEST_POSTGRES_URL is set (CI sets it).

PostgreSQL tests run in a database created for this test session (``lstmbot_test_<random>``)
and dropped at its end, so concurrent sessions on the same server never collide; each test
creates the tables and drops them again.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.db.database import Database
from bot.db.models import Base
from bot.db.scratch import create_postgres_database, drop_postgres_database

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not POSTGRES_URL, reason="TEST_POSTGRES_URL is not set"),
    ),
]


@pytest.fixture(scope="session")
def postgres_session_url() -> Iterator[str]:
    """A database of our own on the test server, for the whole session."""
    assert POSTGRES_URL, "only requested when TEST_POSTGRES_URL is set"
    url = asyncio.run(create_postgres_database(POSTGRES_URL, tag="test"))
    try:
        yield url
    finally:
        asyncio.run(drop_postgres_database(url))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: "sqlite" or "postgresql"."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty database's URL on the backend under test."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.sqlite3'}"
    return str(request.getfixturevalue("postgres_session_url"))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A Database with the schema created from the models; tables are dropped afterwards."""
    database = Database.from_url(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)  # leftovers of an interrupted run
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield database
    finally:
        await database.engine.dispose()
        async with database.engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
        await database.dispose()
