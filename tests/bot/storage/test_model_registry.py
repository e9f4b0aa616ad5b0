"""The model registry's rules, on SQLite and PostgreSQL: publish, promote, retire, reject,
rollback, one champion and one challenger per name, and the bundles kept whole."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repository as repo
from bot.db.database import Database
from bot.db.models import ModelVersion
from bot.db.repository import models as registry
from core.bundle import load_bundle, save_bundle
from core.bundle_archive import unpack

Versions = Callable[..., Path]


@pytest.fixture
def versions(tiny_bundle: Path, tmp_path: Path) -> Versions:
    """Bundles of tiny-char under versions of our choosing (each its own folder)."""
    base = load_bundle(tiny_bundle)
    made: dict[str, Path] = {}

    def make(version: str, **meta: Any) -> Path:
        folder = tmp_path / f"tiny-char-{version}-{len(meta)}"
        key = f"{folder.name} {sorted(meta.items())!r}"
        if key in made:
            # Saved again, its `created` time could fall in the next second: another archive.
            return made[key]
        keep = {k: v for k, v in base.meta.items() if k not in ("name", "version", "created", "tokenizer")}
        made[key] = save_bundle(
            folder,
            model=base.model,
            tokenizer=base.tokenizer,
            weights=base.weights,
            name="tiny-char",
            version=version,
            meta={**keep, **meta},
        )
        return made[key]

    return make


async def _publish(db: Database, folder: Path, role: str = "challenger", **kw: Any) -> repo.Version:
    return await db.run(lambda s: registry.publish(s, bundle=folder, role=role, **kw))


async def _roles(db: Database) -> dict[str, tuple[str, str | None]]:
    rows = await db.run(lambda s: repo.list_versions(s, name="tiny-char"), write=False)
    return {row.version: (row.role, row.reason) for row in rows}


async def test_publish_and_promote_retires_the_old_champion(db: Database, versions: Versions) -> None:
    first = await _publish(db, versions("v1"), "champion")
    assert (first.role, first.replaces, first.decided_at is not None) == ("champion", None, True)
    challenger = await _publish(db, versions("v2"), lineage={"gates": {"duels": "won 61%"}})
    assert challenger.role == "challenger" and challenger.decided_at is None
    assert challenger.lineage["gates"] == {"duels": "won 61%"}
    assert challenger.archive_size > 0 and len(challenger.archive_sha256) == 64

    promoted = await db.run(lambda s: registry.promote(s, name="tiny-char", version="v2"))
    assert (promoted.role, promoted.replaces) == ("champion", "v1")
    assert await _roles(db) == {"v1": ("retired", "replaced by v2"), "v2": ("champion", None)}
    champion = await db.run(lambda s: repo.champion_of(s, name="tiny-char"), write=False)
    assert champion is not None and champion.version == "v2"
    assert await db.run(lambda s: repo.challenger_of(s, name="tiny-char"), write=False) is None
    # Promoting the champion again changes nothing; publishing straight as champion replaces it.
    await db.run(lambda s: registry.promote(s, name="tiny-char", version="v2"))
    await _publish(db, versions("v3"), "champion")
    assert (await _roles(db))["v2"] == ("retired", "replaced by v3")
    listed = await db.run(lambda s: repo.list_versions(s), write=False)
    assert [v.version for v in listed] == ["v3", "v2", "v1"]  # newest first


async def test_one_challenger_one_version_one_content(db: Database, versions: Versions) -> None:
    await _publish(db, versions("v1"))
    again = await _publish(db, versions("v1"))  # the same bundle: a no-op
    assert again.role == "challenger"
    with pytest.raises(repo.RegistryError, match="already has a challenger"):
        await _publish(db, versions("v2"))
    with pytest.raises(repo.RegistryError, match="other contents"):
        await _publish(db, versions("v1", note="changed"))
    with pytest.raises(repo.RegistryError, match="as challenger"):
        await _publish(db, versions("v1"), "champion")
    with pytest.raises(repo.RegistryError, match="published as"):
        await _publish(db, versions("v9"), "retired")
    assert await _roles(db) == {"v1": ("challenger", None)}


async def test_the_schema_itself_allows_one_champion_per_name(db: Database, versions: Versions) -> None:
    await _publish(db, versions("v1"), "champion")

    async def second_champion(session: AsyncSession) -> None:
        row = {"name": "tiny-char", "version": "x", "role": "champion", "lineage": {}}
        session.add(ModelVersion(**row, archive_sha256="0" * 64, archive_size=1, archive=b"x"))
        await session.flush()

    with pytest.raises(IntegrityError):
        await db.run(second_champion)
    other = await _publish(db, versions("v1"), "champion", name="other-model")  # another name: fine
    assert other.name == "other-model" and other.role == "champion"


async def test_rollback_walks_back_through_the_champions(db: Database, versions: Versions) -> None:
    for version in ("v1", "v2", "v3"):
        await _publish(db, versions(version), "champion")
    back = await db.run(lambda s: registry.rollback(s, name="tiny-char", reason="users hate it"))
    assert back.version == "v2" and back.role == "champion"
    roles = await _roles(db)
    assert roles["v3"] == ("retired", "rolled back to v2: users hate it")
    assert roles["v1"] == ("retired", "replaced by v2")
    back = await db.run(lambda s: registry.rollback(s, name="tiny-char"))
    assert back.version == "v1"
    with pytest.raises(repo.RegistryError, match="replaced no earlier version"):
        await db.run(lambda s: registry.rollback(s, name="tiny-char"))
    # Retiring the champion leaves no champion: the name is served from MODEL_DIR again.
    await db.run(lambda s: registry.retire(s, name="tiny-char", version="v1", reason="back to the book"))
    assert await db.run(lambda s: repo.champion_of(s, name="tiny-char"), write=False) is None
    with pytest.raises(repo.RegistryError, match="no champion"):
        await db.run(lambda s: registry.rollback(s, name="tiny-char"))
    # A retired version may be promoted again (a rollback to a version of one's choosing).
    again = await db.run(lambda s: registry.promote(s, name="tiny-char", version="v3"))
    assert (again.role, again.replaces) == ("champion", None)


async def test_reject_and_retire(db: Database, versions: Versions) -> None:
    await _publish(db, versions("v1"), "champion")
    await _publish(db, versions("v2"))
    with pytest.raises(repo.RegistryError, match="only a challenger"):
        await db.run(lambda s: registry.reject(s, name="tiny-char", version="v1", reason="no"))
    rejected = await db.run(lambda s: registry.reject(s, name="tiny-char", version="v2", reason="copies"))
    assert (rejected.role, rejected.reason) == ("rejected", "copies")
    assert rejected.decided_at is not None
    with pytest.raises(repo.RegistryError, match="was rejected"):
        await db.run(lambda s: registry.promote(s, name="tiny-char", version="v2"))
    with pytest.raises(repo.RegistryError, match="no version v7"):
        await db.run(lambda s: registry.retire(s, name="tiny-char", version="v7", reason="?"))
    await _publish(db, versions("v3"))  # the challenger's place is free again
    retired = await db.run(lambda s: registry.retire(s, name="tiny-char", version="v3", reason="stale"))
    assert (retired.role, retired.reason) == ("retired", "stale")
    again = await db.run(lambda s: registry.retire(s, name="tiny-char", version="v3", reason="other"))
    assert again.reason == "stale"  # retiring twice changes nothing


async def test_a_version_that_failed_its_gates_is_published_rejected(
    db: Database, versions: Versions
) -> None:
    await _publish(db, versions("v1"), "champion")
    await _publish(db, versions("v2"))
    # Even with a challenger in place: a rejected version is never served.
    failed = await _publish(
        db, versions("v3"), "rejected", reason="held-out loss +0.05", lineage={"passed": False}
    )
    assert (failed.role, failed.reason, failed.lineage["passed"]) == (
        "rejected",
        "held-out loss +0.05",
        False,
    )
    assert failed.decided_at is not None
    live = await db.run(registry.live_versions, write=False)
    assert sorted((v.version, v.role) for v in live) == [("v1", "champion"), ("v2", "challenger")]
    with pytest.raises(repo.RegistryError, match="needs a reason"):
        await _publish(db, versions("v4"), "rejected")
    with pytest.raises(repo.RegistryError, match="needs a reason"):
        await _publish(db, versions("v4"), "challenger", reason="why?")
    with pytest.raises(repo.RegistryError, match="was rejected"):
        await db.run(lambda s: registry.promote(s, name="tiny-char", version="v3"))


async def test_parent_and_lineage_come_from_the_bundle(db: Database, versions: Versions) -> None:
    folder = versions(
        "v2",
        preferences={"loss": "kto", "rows": 900, "base": "tiny-char@v1"},
        metrics={"heldout": {"nats_per_token": 1.5}},
    )
    published = await _publish(db, folder, lineage={"window": ["2026-12-01", "2026-12-07"]})
    assert published.parent_version == "v1"
    assert published.lineage["preferences"]["rows"] == 900
    assert published.lineage["heldout"] == {"nats_per_token": 1.5}
    assert published.lineage["window"] == ["2026-12-01", "2026-12-07"]


async def test_the_poll_and_the_archive(db: Database, versions: Versions, tmp_path: Path) -> None:
    await _publish(db, versions("v1"), "champion")
    await _publish(db, versions("v2"))
    await _publish(db, versions("v0"), "champion", name="retired-one")
    await db.run(lambda s: registry.retire(s, name="retired-one", version="v0", reason="old"))
    live = await db.run(repo.live_versions, write=False)
    assert sorted((v.name, v.role, v.version) for v in live) == [
        ("tiny-char", "challenger", "v2"),
        ("tiny-char", "champion", "v1"),
    ]
    fetched = await db.run(lambda s: repo.fetch_archive(s, name="tiny-char", version="v2"), write=False)
    assert fetched is not None
    data, sha = fetched
    assert sha == next(v.archive_sha256 for v in live if v.version == "v2")
    assert load_bundle(unpack(data, sha, tmp_path / "cache" / "v2")).version == "v2"
    assert await db.run(lambda s: repo.fetch_archive(s, name="tiny-char", version="v9"), write=False) is None


async def test_concurrent_publishers_leave_one_challenger(db: Database, versions: Versions) -> None:
    folders = [versions(f"c{i}") for i in range(3)]
    results = await asyncio.gather(*(_publish(db, folder) for folder in folders), return_exceptions=True)
    won = [r for r in results if isinstance(r, repo.Version)]
    lost = [r for r in results if not isinstance(r, repo.Version)]
    assert len(won) == 1 and all(isinstance(r, repo.RegistryError) for r in lost), results
    assert list((await _roles(db)).values()) == [("challenger", None)]
