"""One object the bot holds for its whole life: engine, session factory and unit-of-work runner.

Created in the Application's ``post_init`` and disposed in ``post_shutdown``.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from sqlalchemy import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.db.engine import create_engine, create_sessionmaker
from bot.db.transaction import DEFAULT_ATTEMPTS, RetryHook, Work, run_in_transaction

T = TypeVar("T")


class Database:
    """The bot's database handle."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)
        # SQLite has one writer at a time anyway; queue this process's writers in memory.
        self.write_lock: asyncio.Lock | None = asyncio.Lock() if engine.dialect.name == "sqlite" else None

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
        attempts: int = DEFAULT_ATTEMPTS,
        on_retry: RetryHook | None = None,
    ) -> T:
        """Run ``work(session)`` as one retried transaction; see ``run_in_transaction``."""
        return await run_in_transaction(
            self.sessions,
            work,
            write=write,
            attempts=attempts,
            on_retry=on_retry,
            write_lock=self.write_lock,
        )

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
