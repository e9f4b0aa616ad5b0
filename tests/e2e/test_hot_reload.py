"""Hot reload, end to end: a new champion published into the running bot's database is served
without a restart while users keep sending seeds; every update is answered once, and every
sample records the version that wrote it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import StoredSample
from bot.db.repository import models as registry
from bot.generation import CHALLENGER
from bot.services import SERVICES_KEY
from core.bundle import load_bundle, save_bundle
from tests.e2e.conftest import Harness, Json


@pytest.fixture
def bot_settings(tmp_path: Path) -> dict[str, Any]:
    """Poll the registry five times a second (the default is every 10 s)."""
    return {"model_poll_s": 0.2, "model_cache_dir": tmp_path / "model-cache"}


def _tuned(shipped: Path, folder: Path, version: str, scale: float) -> Path:
    """A "fine-tuned" tiny-char: the same vocabulary, other weights, its own version."""
    base = load_bundle(shipped)
    meta = {k: v for k, v in base.meta.items() if k not in ("name", "version", "created", "tokenizer")}
    weights = {key: value * scale for key, value in base.weights.items()}
    return save_bundle(
        folder, model=base.model, tokenizer=base.tokenizer, weights=weights, version=version, meta=meta
    )


async def _seeds(harness: Harness, users: list[Json], phase: str, count: int) -> None:
    """Every user sends `count` seeds, one after another, all users at once."""

    async def one_user(user: Json) -> None:
        for i in range(count):
            reply = await harness.say(user, f"{phase} {i} truth", timeout=30)
            assert reply["text"].startswith(f"{phase} {i} truth")

    await asyncio.gather(*(one_user(user) for user in users))


async def _versions(harness: Harness) -> dict[str, set[str]]:
    async def work(session: AsyncSession) -> dict[str, set[str]]:
        by_phase: dict[str, set[str]] = {}
        rows = await session.execute(select(StoredSample.seed, StoredSample.model_version))
        for seed, version in rows.all():
            by_phase.setdefault(seed.split()[0], set()).add(version)
        return by_phase

    result: dict[str, set[str]] = await harness.query(work)
    return result


async def test_a_new_champion_is_served_without_a_restart(
    harness: Harness, model_dir: Path, tmp_path: Path
) -> None:
    generation = harness.app.bot_data[SERVICES_KEY].generation
    shipped = generation.info("tiny-char").version
    users = [harness.sb.user(f"Reader{i}") for i in range(4)]
    await harness.say(users[0], "/model tiny-char")  # a chosen model is kept: by name
    await _seeds(harness, users, "before", 2)

    tuned = _tuned(model_dir / "tiny-char", tmp_path / "tiny-char-tuned", "tuned-1", 0.5)
    publish = harness.db.run(
        lambda s: registry.publish(s, bundle=tuned, role="champion", name="tiny-char", lineage={"by": "test"})
    )
    await asyncio.gather(_seeds(harness, users, "during", 3), publish)  # users keep writing
    await harness.sb.wait_until(
        lambda: generation.info("tiny-char").version == "tuned-1", timeout=20, what="the swap"
    )
    await _seeds(harness, users, "after", 2)

    # A challenger is loaded too, but users still get the champion.
    challenger = _tuned(model_dir / "tiny-char", tmp_path / "tiny-char-c", "tuned-2", 0.8)
    await harness.db.run(lambda s: registry.publish(s, bundle=challenger, name="tiny-char"))
    await harness.sb.wait_until(
        lambda: "tiny-char" in generation.challengers, timeout=20, what="the challenger loaded"
    )
    assert generation.info("tiny-char", CHALLENGER).version == "tuned-2"
    await _seeds(harness, users[:1], "challenged", 1)

    # Retiring the champion hands the name back to its MODEL_DIR bundle.
    await harness.db.run(
        lambda s: registry.retire(s, name="tiny-char", version="tuned-1", reason="test over")
    )
    await harness.sb.wait_until(
        lambda: generation.info("tiny-char").version == shipped, timeout=20, what="the fall-back"
    )
    await _seeds(harness, users[:1], "back", 1)

    assert await harness.quiet(users[0]["id"], 0.3) == 0
    for user in users:  # every seed answered exactly once
        expected = 2 + 3 + 2 + (3 if user is users[0] else 0)
        assert len(harness.sb.bot_messages(user["id"])) == expected
    versions = await _versions(harness)
    assert versions["before"] == {shipped}
    assert versions["during"] <= {shipped, "tuned-1"}
    assert versions["after"] == {"tuned-1"} and versions["challenged"] == {"tuned-1"}
    assert versions["back"] == {shipped}
    assert harness.restarts == 0 and harness.app.bot_data[SERVICES_KEY].generation is generation
    assert list((tmp_path / "model-cache" / "tiny-char").iterdir())  # fetched once, cached
