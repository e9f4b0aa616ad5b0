"""Alembic environment: async, reading the same settings as the bot.

On PostgreSQL the migration runs under an advisory lock, so concurrent upgrades queue up.
The URL comes from the Config's attributes (set by ``migrations.alembic_config``), else
``sqlalchemy.url`` in an ini file, else the bot's ``DATABASE_URL``. SQLite runs in batch
mode (it cannot ALTER most things in place) with foreign keys off while tables are copied,
and is checked for dangling references afterwards.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, pool, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.db.engine import SQLITE_WRITE_OPTION, create_engine, is_sqlite
from bot.db.models import Base, UTCDateTime
from migrations import DATABASE_URL_ATTRIBUTE

config = context.config
target_metadata = Base.metadata
# PostgreSQL advisory lock key for migrations (any constant; "lstmbot" in ASCII).
MIGRATION_LOCK_KEY = 0x6C73746D626F74


def _database_url() -> str:
    url = config.attributes.get(DATABASE_URL_ATTRIBUTE) or config.get_main_option("sqlalchemy.url")
    if url:
        return str(url)
    from bot.settings import get_settings

    return get_settings().database_url


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Render our UTCDateTime as a plain DateTime so revisions never import application code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _options(url: str) -> dict[str, Any]:
    sqlite = is_sqlite(url)
    return {
        "target_metadata": target_metadata,
        "render_as_batch": sqlite,
        # Our engine takes BEGIN over on SQLite, which makes its DDL transactional too.
        "transactional_ddl": True,
        "compare_type": True,
        "render_item": _render_item,
    }


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of connecting (``--sql``)."""
    url = _database_url()
    context.configure(url=url, literal_binds=True, **_options(url))
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    context.configure(connection=connection, **_options(str(connection.engine.url)))
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Replicas started together all migrate: one at a time, and the ones that wait then
            # read the version the first one committed and find nothing left to do. The lock is
            # released with the transaction, also when a migration fails.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()
    if connection.dialect.name == "sqlite":
        problems = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
        if problems:
            raise RuntimeError(f"foreign key violations after migrating: {problems[:5]}")


async def _run_async(url: str) -> None:
    engine = create_engine(url, foreign_keys=False, lock_timeout=False, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            conn: AsyncConnection = await connection.execution_options(**{SQLITE_WRITE_OPTION: True})
            await conn.run_sync(_run_on)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Connect and migrate; reuses a connection handed over in ``config.attributes``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
    else:
        asyncio.run(_run_async(_database_url()))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
