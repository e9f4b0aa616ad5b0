"""Alembic: upgrade, downgrade and upgrade again; the migrated schema equals the models'."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

import cli
import migrations
from bot.db.engine import create_engine
from bot.db.models import Base
from bot.db.scratch import temporary_database
from tests.bot.storage.conftest import POSTGRES_URL

TABLES = {
    "users",
    "chats",
    "samples",
    "ratings",
    "processed_updates",
    "games",
    "game_guesses",
    "inline_offers",
    "duels",
    "duel_votes",
    "sample_claims",
    "request_slots",
    "limit_charges",
    "anonymous_reactions",
    "model_versions",
}


@pytest.fixture
async def fresh_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of its own (migrations must start from nothing)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrated.sqlite3'}"
        return
    assert POSTGRES_URL
    async with temporary_database(POSTGRES_URL, tag="migr") as url:
        yield url


async def _inspect(engine: AsyncEngine, fn: Any) -> Any:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync_conn: fn(inspect(sync_conn)))


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(await _inspect(engine, lambda insp: insp.get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade(fresh_url: str) -> None:
    # Alembic's commands are synchronous and run their own event loop: call them from a thread.
    await asyncio.to_thread(migrations.upgrade, fresh_url)
    assert await _tables(fresh_url) == TABLES | {"alembic_version"}
    await asyncio.to_thread(migrations.downgrade, fresh_url, "base")
    assert await _tables(fresh_url) == {"alembic_version"}
    await asyncio.to_thread(migrations.upgrade, fresh_url, "head")
    assert await _tables(fresh_url) == TABLES | {"alembic_version"}
    # `alembic check`: autogenerate finds nothing to do.
    await asyncio.to_thread(migrations.check, fresh_url)


async def _one_sample(engine: AsyncEngine, *, length: int) -> None:
    """A user, their private chat and one sample (id 7) in it, in the columns of 0001."""
    from sqlalchemy import text

    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO users (id, telegram_id) VALUES (1, 10)"))
        await conn.execute(text("INSERT INTO chats (id, telegram_id, type) VALUES (1, 10, 'private')"))
        await conn.execute(
            text(
                "INSERT INTO samples (id, user_id, chat_id, seed, model_name, model_version,"
                " temperature, length, text, generation_ms, delivered)"
                f" VALUES (7, 1, 1, 's', 'm', '1', 0.5, {length}, 't', 1, false)"
            )
        )


async def test_0002_keeps_existing_samples_private_and_downgrades(fresh_url: str) -> None:
    """0001 -> 0002 on a database with a sample: it stays, private and certain; and back."""
    from sqlalchemy import text

    await asyncio.to_thread(migrations.upgrade, fresh_url, "0001")
    engine = create_engine(fresh_url)
    try:
        await _one_sample(engine, length=10)
        await asyncio.to_thread(migrations.upgrade, fresh_url, "0002")
        async with engine.connect() as conn:
            row = (
                await conn.execute(text("SELECT id, shared, send_uncertain, inline_message_id FROM samples"))
            ).one()
        assert (row[0], bool(row[1]), bool(row[2]), row[3]) == (7, False, False, None)
        await asyncio.to_thread(migrations.downgrade, fresh_url, "0001")
        columns = await _inspect(engine, lambda insp: {c["name"] for c in insp.get_columns("samples")})
        assert not columns & {"shared", "send_uncertain", "inline_message_id"}
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT id FROM samples"))).scalars().all() == [7]
    finally:
        await engine.dispose()


async def test_0006_adds_sample_claims_and_downgrades(fresh_url: str) -> None:
    """0002 -> 0006 on a database with a sample: it has no claim (the outbox may send it);
    a claim cascades with its sample; and back to 0002 keeps the sample."""
    from sqlalchemy import text

    await asyncio.to_thread(migrations.upgrade, fresh_url, "0002")
    engine = create_engine(fresh_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO users (id, telegram_id) VALUES (1, 10)"))
            await conn.execute(text("INSERT INTO chats (id, telegram_id, type) VALUES (1, 10, 'private')"))
            for sample_id in (7, 8):
                await conn.execute(
                    text(
                        "INSERT INTO samples (id, user_id, chat_id, seed, model_name, model_version,"
                        " temperature, length, text, generation_ms, delivered)"
                        f" VALUES ({sample_id}, 1, 1, 's', 'm', '1', 0.5, 10, 't', 1, false)"
                    )
                )
        await asyncio.to_thread(migrations.upgrade, fresh_url, "0006")
        async with engine.begin() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM sample_claims"))).scalar_one() == 0
            await conn.execute(text("INSERT INTO sample_claims (sample_id, replica) VALUES (8, 'r1')"))
        async with engine.begin() as conn:
            if fresh_url.startswith("sqlite"):
                await conn.execute(text("PRAGMA foreign_keys=ON"))
            await conn.execute(text("DELETE FROM samples WHERE id = 8"))
            assert (await conn.execute(text("SELECT count(*) FROM sample_claims"))).scalar_one() == 0
        await asyncio.to_thread(migrations.downgrade, fresh_url, "0002")
        assert "sample_claims" not in await _inspect(engine, lambda insp: insp.get_table_names())
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT id FROM samples"))).scalars().all() == [7]
    finally:
        await engine.dispose()


async def test_0007_adds_the_shared_limits_and_downgrades(fresh_url: str) -> None:
    """0006 -> 0007: both tables start empty and take a slot and a charge; back to 0006 drops
    them and keeps everything else."""
    from sqlalchemy import text

    await asyncio.to_thread(migrations.upgrade, fresh_url, "0006")
    engine = create_engine(fresh_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO users (id, telegram_id) VALUES (1, 10)"))
        await asyncio.to_thread(migrations.upgrade, fresh_url, "0007")
        async with engine.begin() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM request_slots"))).scalar_one() == 0
            await conn.execute(
                text(
                    "INSERT INTO request_slots (user_id, holder, update_id, expires_at)"
                    " VALUES (10, 'r1/ab', 5, CURRENT_TIMESTAMP)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO limit_charges (user_id, charged_at, slots) VALUES (10, CURRENT_TIMESTAMP, 4)"
                )
            )
        await asyncio.to_thread(migrations.downgrade, fresh_url, "0006")
        tables = await _inspect(engine, lambda insp: insp.get_table_names())
        assert "request_slots" not in tables and "limit_charges" not in tables
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT telegram_id FROM users"))).scalars().all() == [10]
    finally:
        await engine.dispose()


def _schema(insp: Any) -> dict[str, Any]:
    """Everything about the tables that the models decide, in comparable form."""
    schema: dict[str, Any] = {}
    for table in sorted(TABLES):
        schema[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default") is not None)
                for c in insp.get_columns(table)
            ],
            "pk": insp.get_pk_constraint(table),
            "fks": sorted(
                (
                    fk["name"],
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    (fk.get("options") or {}).get("ondelete"),
                )
                for fk in insp.get_foreign_keys(table)
            ),
            "unique": sorted(
                (uq["name"], tuple(uq["column_names"])) for uq in insp.get_unique_constraints(table)
            ),
            "indexes": sorted(
                (ix["name"], tuple(ix["column_names"]), bool(ix["unique"])) for ix in insp.get_indexes(table)
            ),
            "checks": sorted(
                (ck["name"], " ".join(ck["sqltext"].split())) for ck in insp.get_check_constraints(table)
            ),
        }
    return schema


async def test_migrations_match_the_models_exactly(fresh_url: str, tmp_path: Path, backend: str) -> None:
    """Beyond `alembic check` (which ignores CHECK constraints and ON DELETE rules): reflect a
    migrated database and one built by ``create_all`` and compare everything."""
    await asyncio.to_thread(migrations.upgrade, fresh_url)
    migrated = create_engine(fresh_url)
    try:
        from_migrations = await _inspect(migrated, _schema)
    finally:
        await migrated.dispose()

    async def from_models(url: str) -> dict[str, Any]:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
            return dict(await _inspect(engine, _schema))
        finally:
            await engine.dispose()

    if backend == "sqlite":
        expected = await from_models(f"sqlite+aiosqlite:///{tmp_path / 'models.sqlite3'}")
    else:
        assert POSTGRES_URL
        async with temporary_database(POSTGRES_URL, tag="models") as url:
            expected = await from_models(url)
    assert from_migrations == expected


async def test_0003_unsets_the_old_defaults_and_downgrades(fresh_url: str) -> None:
    """0002 -> 0003: stored defaults (0.5, 400) become "not chosen", real choices stay; and back."""
    from sqlalchemy import text

    await asyncio.to_thread(migrations.upgrade, fresh_url, "0002")
    engine = create_engine(fresh_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO users (id, telegram_id) VALUES (1, 10)"))
            await conn.execute(
                text(
                    "INSERT INTO users (id, telegram_id, temperature, sample_length) VALUES (2, 11, 1.2, 50)"
                )
            )
        await asyncio.to_thread(migrations.upgrade, fresh_url, "0003")
        query = text("SELECT temperature, sample_length FROM users ORDER BY id")
        async with engine.connect() as conn:
            assert [tuple(r) for r in await conn.execute(query)] == [(None, None), (1.2, 50)]
        await asyncio.to_thread(migrations.downgrade, fresh_url, "0002")
        async with engine.connect() as conn:
            assert [tuple(r) for r in await conn.execute(query)] == [(0.5, 400), (1.2, 50)]
    finally:
        await engine.dispose()


async def test_0008_moves_each_length_to_its_level_and_downgrades(fresh_url: str) -> None:
    """0007 -> 0008: a length goes to the level whose range holds it (char when both, NULL when
    neither); chats too; and back to one sample_length."""
    from sqlalchemy import text

    await asyncio.to_thread(migrations.upgrade, fresh_url, "0007")
    engine = create_engine(fresh_url)
    try:
        async with engine.begin() as conn:
            for user_id, length in ((1, None), (2, 400), (3, 10), (4, 3000), (5, 2)):
                await conn.execute(
                    text("INSERT INTO users (id, telegram_id, sample_length) VALUES (:id, :tg, :n)"),
                    {"id": user_id, "tg": 10 + user_id, "n": length},
                )
            await conn.execute(
                text("INSERT INTO chats (id, telegram_id, type, sample_length) VALUES (1, -1, 'group', 8)")
            )
        await asyncio.to_thread(migrations.upgrade, fresh_url, "0008")
        async with engine.connect() as conn:
            users = await conn.execute(text("SELECT length_char, length_word FROM users ORDER BY id"))
            assert [tuple(r) for r in users] == [
                (None, None),
                (400, None),
                (None, 10),
                (None, None),
                (None, None),
            ]
            chats = await conn.execute(text("SELECT length_char, length_word FROM chats"))
            assert [tuple(r) for r in chats] == [(None, 8)]
        await asyncio.to_thread(migrations.downgrade, fresh_url, "0007")
        async with engine.connect() as conn:
            users = await conn.execute(text("SELECT sample_length FROM users ORDER BY id"))
            assert [r[0] for r in users] == [None, 400, 10, None, None]
    finally:
        await engine.dispose()


async def test_0012_adds_reaction_sources_and_anonymous_counts_and_downgrades(fresh_url: str) -> None:
    """0011 -> 0012: an existing rating came from a button; a reaction rating and an anonymous
    count are stored (the count cascades with its sample); back to 0011 keeps both ratings."""
    from sqlalchemy import text

    await asyncio.to_thread(migrations.upgrade, fresh_url, "0011")
    engine = create_engine(fresh_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO users (id, telegram_id) VALUES (1, 10), (2, 11)"))
            await conn.execute(text("INSERT INTO chats (id, telegram_id, type) VALUES (1, 10, 'private')"))
            for sample_id in (7, 8):
                await conn.execute(
                    text(
                        "INSERT INTO samples (id, user_id, chat_id, seed, model_name, model_version,"
                        " temperature, length, text, generation_ms, delivered)"
                        f" VALUES ({sample_id}, 1, 1, 's', 'm', '1', 0.5, 10, 't', 1, false)"
                    )
                )
            await conn.execute(text("INSERT INTO ratings (sample_id, user_id, score) VALUES (7, 1, 1)"))
        await asyncio.to_thread(migrations.upgrade, fresh_url, "0012")
        async with engine.begin() as conn:
            assert (await conn.execute(text("SELECT source FROM ratings"))).scalars().all() == ["button"]
            await conn.execute(
                text("INSERT INTO ratings (sample_id, user_id, score, source) VALUES (7, 2, -1, 'reaction')")
            )
            await conn.execute(
                text(
                    "INSERT INTO anonymous_reactions (sample_id, likes, dislikes, counted_at)"
                    " VALUES (7, 2, 0, CURRENT_TIMESTAMP), (8, 1, 1, CURRENT_TIMESTAMP)"
                )
            )
        with pytest.raises(Exception, match=r"(?i)check"):
            async with engine.begin() as conn:
                await conn.execute(
                    text("INSERT INTO ratings (sample_id, user_id, score, source) VALUES (8, 2, 1, 'emoji')")
                )
        async with engine.begin() as conn:
            if fresh_url.startswith("sqlite"):
                await conn.execute(text("PRAGMA foreign_keys=ON"))
            await conn.execute(text("DELETE FROM samples WHERE id = 8"))
            counted = await conn.execute(text("SELECT sample_id FROM anonymous_reactions"))
            assert counted.scalars().all() == [7]
        await asyncio.to_thread(migrations.downgrade, fresh_url, "0011")
        assert "anonymous_reactions" not in await _inspect(engine, lambda insp: insp.get_table_names())
        columns = await _inspect(engine, lambda insp: {c["name"] for c in insp.get_columns("ratings")})
        assert "source" not in columns
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT user_id, score FROM ratings ORDER BY user_id"))
            assert [tuple(r) for r in rows] == [(1, 1), (2, -1)]
    finally:
        await engine.dispose()


async def test_0013_adds_the_model_registry_and_downgrades(fresh_url: str) -> None:
    """0012 -> 0013: an empty registry; one champion and one challenger per name (the partial
    index), any number retired; back to 0012 drops it and keeps the samples."""
    from sqlalchemy import text

    await asyncio.to_thread(migrations.upgrade, fresh_url, "0012")
    engine = create_engine(fresh_url)
    insert = text(
        "INSERT INTO model_versions (name, version, role, lineage, archive_sha256, archive_size, archive)"
        " VALUES (:name, :version, :role, '{}', 'ab', 1, :blob)"
    )

    def row(name: str, version: str, role: str) -> dict[str, Any]:
        return {"name": name, "version": version, "role": role, "blob": b"x"}

    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO users (id, telegram_id) VALUES (1, 10)"))
        await asyncio.to_thread(migrations.upgrade, fresh_url, "0013")
        async with engine.begin() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM model_versions"))).scalar_one() == 0
            for name, version, role in (
                ("m", "1", "retired"),
                ("m", "2", "retired"),
                ("m", "3", "champion"),
                ("m", "4", "challenger"),
                ("n", "1", "champion"),
            ):
                await conn.execute(insert, row(name, version, role))
        for duplicate in (row("m", "5", "champion"), row("m", "6", "challenger"), row("m", "3", "retired")):
            with pytest.raises(Exception, match=r"(?i)unique"):
                async with engine.begin() as conn:
                    await conn.execute(insert, duplicate)
        with pytest.raises(Exception, match=r"(?i)check"):
            async with engine.begin() as conn:
                await conn.execute(insert, row("m", "7", "king"))
        if fresh_url.startswith("sqlite"):  # ids never reused (as 0010)
            async with engine.connect() as conn:
                ddl = "SELECT sql FROM sqlite_master WHERE name = 'model_versions'"
                assert "AUTOINCREMENT" in (await conn.execute(text(ddl))).scalar_one()
        await asyncio.to_thread(migrations.downgrade, fresh_url, "0012")
        assert "model_versions" not in await _inspect(engine, lambda insp: insp.get_table_names())
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT telegram_id FROM users"))).scalars().all() == [10]
    finally:
        await engine.dispose()


def test_metadata_diff_is_empty_on_a_live_connection(tmp_path: Path) -> None:
    """The same comparison Alembic's autogenerate makes, through a handed-over connection."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    url = f"sqlite+aiosqlite:///{tmp_path / 'cmp.sqlite3'}"
    migrations.upgrade(url)

    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async def run() -> list[Any]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return list(await conn.run_sync(diff))
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == []


def test_cli_db_from_another_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the default SQLite file lands under ./data of the cwd
    monkeypatch.delenv("DATABASE_URL", raising=False)
    from bot.settings import get_settings

    get_settings.cache_clear()
    try:
        assert cli.main(["db", "upgrade"]) == 0
        assert (tmp_path / "data" / "lstmbot.sqlite3").is_file()
        assert cli.main(["db", "current"]) == 0
        head = ScriptDirectory.from_config(migrations.alembic_config()).get_current_head()
        assert f"{head} (head)" in capsys.readouterr().out
        assert cli.main(["db", "check"]) == 0
        assert cli.main(["db", "downgrade", "base"]) == 0
        capsys.readouterr()
        assert cli.main(["db", "upgrade", "nonexistent"]) == 2
        assert "lstmbot db: error:" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()


async def test_0015_adds_shown_lengths_null_for_older_samples_and_downgrades(fresh_url: str) -> None:
    """0014 -> 0015 on a database with a sample: it stays, its shown length unknown (NULL); and
    back, the sample kept."""
    from sqlalchemy import text

    await asyncio.to_thread(migrations.upgrade, fresh_url, "0014")
    engine = create_engine(fresh_url)
    try:
        await _one_sample(engine, length=100)
        await asyncio.to_thread(migrations.upgrade, fresh_url, "0015")
        async with engine.connect() as conn:
            row = (await conn.execute(text("SELECT id, length, shown_length FROM samples"))).one()
        assert tuple(row) == (7, 100, None)
        await asyncio.to_thread(migrations.downgrade, fresh_url, "0014")
        columns = await _inspect(engine, lambda insp: {c["name"] for c in insp.get_columns("samples")})
        assert "shown_length" not in columns
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT id FROM samples"))).scalars().all() == [7]
    finally:
        await engine.dispose()
