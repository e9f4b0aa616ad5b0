"""Replicas started together all run `lstmbot db upgrade`: on PostgreSQL they migrate one at a time."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.db.engine import create_engine
from bot.db.scratch import create_postgres_database, drop_postgres_database

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")
ROOT = Path(__file__).resolve().parents[3]
REPLICAS = 4

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="TEST_POSTGRES_URL is not set (PostgreSQL only)")


async def _versions(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return [row[0] for row in await conn.execute(text("SELECT version_num FROM alembic_version"))]
    finally:
        await engine.dispose()


def test_concurrent_upgrades_on_an_empty_database_all_succeed_once() -> None:
    assert POSTGRES_URL
    url = asyncio.run(create_postgres_database(POSTGRES_URL, tag="lock"))
    try:
        env = {**os.environ, "DATABASE_URL": url}
        upgrades = [
            subprocess.Popen(
                [sys.executable, "-m", "cli", "db", "upgrade"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(REPLICAS)
        ]
        outputs = [p.communicate(timeout=180)[0] for p in upgrades]
        codes = [p.returncode for p in upgrades]
        assert codes == [0] * REPLICAS, "\n---\n".join(outputs)
        from alembic.script import ScriptDirectory

        from migrations import alembic_config

        head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
        assert asyncio.run(_versions(url)) == [head]
    finally:
        asyncio.run(drop_postgres_database(url))
