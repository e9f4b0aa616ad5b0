"""The registry watcher: a damaged bundle never replaces a working one, a model the registry
alone knows comes and goes with it, and a cached version is not fetched again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.database import Database
from bot.db.models import ModelVersion
from bot.db.repository import models as registry
from bot.generation import GenerationService
from bot.model_watch import ModelWatcher
from core.bundle import load_bundle, save_bundle
from migrations import upgrade


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"
    await asyncio.to_thread(upgrade, url)
    database = Database.from_url(url)
    yield database
    await database.dispose()


def _version(tiny_bundle: Path, folder: Path, version: str) -> Path:
    base = load_bundle(tiny_bundle)
    meta = {k: v for k, v in base.meta.items() if k not in ("name", "version", "created", "tokenizer")}
    return save_bundle(
        folder, model=base.model, tokenizer=base.tokenizer, weights=base.weights, version=version, meta=meta
    )


def _watcher(db: Database, generation: GenerationService, tmp_path: Path, tiny_bundle: Path) -> ModelWatcher:
    return ModelWatcher(
        db, generation, cache_dir=tmp_path / "cache", poll_s=0, model_dir={"tiny-char": tiny_bundle}
    )


async def test_a_damaged_bundle_keeps_the_served_version(
    db: Database, tiny_bundle: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    generation = GenerationService({"tiny-char": load_bundle(tiny_bundle)}, default="tiny-char")
    shipped = generation.info("tiny-char").version
    watcher = _watcher(db, generation, tmp_path, tiny_bundle)
    folder = _version(tiny_bundle, tmp_path / "v2", "v2")
    await db.run(lambda s: registry.publish(s, bundle=folder, role="champion", name="tiny-char"))

    async def damage(session: AsyncSession) -> None:
        await session.execute(update(ModelVersion).values(archive=b"not a tar"))

    await db.run(damage)
    with caplog.at_level(logging.ERROR, logger="bot.model_watch"):
        assert await watcher.poll() == []
    assert "sha256 mismatch" in caplog.text and "serving what was" in caplog.text
    assert generation.info("tiny-char").version == shipped and watcher.swaps == 0
    assert await watcher.poll() == []  # not fetched again at every poll (tried after RETRY_S)
    assert caplog.text.count("sha256 mismatch") == 1


async def test_a_registry_only_model_comes_and_goes(db: Database, tiny_bundle: Path, tmp_path: Path) -> None:
    generation = GenerationService({"tiny-char": load_bundle(tiny_bundle)}, default="tiny-char")
    watcher = _watcher(db, generation, tmp_path, tiny_bundle)
    folder = _version(tiny_bundle, tmp_path / "fresh", "f1")
    await db.run(lambda s: registry.publish(s, bundle=folder, role="champion", name="fresh"))
    swaps = await watcher.poll()
    assert [(s.name, s.role, s.version, s.source) for s in swaps] == [("fresh", "champion", "f1", "registry")]
    assert [m.name for m in generation.models()] == ["tiny-char", "fresh"]
    assert await watcher.poll() == []  # nothing changed: nothing done
    await db.run(lambda s: registry.retire(s, name="fresh", version="f1", reason="gone"))
    swaps = await watcher.poll()
    assert [(s.name, s.version, s.source) for s in swaps] == [("fresh", None, "none")]
    assert [m.name for m in generation.models()] == ["tiny-char"]

    # Another process of this host with the same cache: the version is not fetched again.
    await db.run(lambda s: registry.promote(s, name="fresh", version="f1"))

    async def drop_archive(session: AsyncSession) -> None:
        await session.execute(update(ModelVersion).values(archive=b""))

    await db.run(drop_archive)
    other = GenerationService({"tiny-char": load_bundle(tiny_bundle)}, default="tiny-char")
    assert [s.version for s in await _watcher(db, other, tmp_path, tiny_bundle).poll()] == ["f1"]
    assert other.info("fresh").version == "f1"
