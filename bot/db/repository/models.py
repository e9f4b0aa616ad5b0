"""The model registry: versions of each model, their roles, and the moves between roles.

A version is published as the `challenger` (a candidate, loaded by every replica for duels)
or straight as the `champion` (what users get), or, when it failed its tests before ever being
served (`lstmbot learn`'s gates), straight as `rejected`, kept with its reason. `promote` makes
a version the champion and retires the one it replaces; `rollback` brings that one back;
`retire` and `reject` take a version out of service with a reason. A name with no champion
row is served from MODEL_DIR.

Every change first takes the name's lock (PostgreSQL: a transaction-scoped advisory lock per
name, which also covers a name's very first publish; SQLite: the write lock that
``Database.run`` takes at BEGIN), so two operators promoting at once queue instead of
racing, and the partial unique index (one champion, one challenger per name) is the last
word if anything else writes the table. Refused moves raise `RegistryError`, whose message
is meant for people.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import CHALLENGER, CHAMPION, LIVE_ROLES, REJECTED, RETIRED, ModelVersion, utcnow
from bot.db.repository.base import StorageError, check_model_name
from core.bundle_archive import Packed, pack

# First key of the per-name advisory lock (the second is the name's hash); "lstmreg" in ASCII.
REGISTRY_LOCK_KEY = 0x6C73746D726567 & 0x7FFFFFFF


class RegistryError(StorageError):
    """A move the registry's rules refuse (the message says why and what to do instead)."""


@dataclass(frozen=True)
class Version:
    """One registry row, without its bundle."""

    name: str
    version: str
    role: str
    parent_version: str | None
    replaces: str | None
    lineage: dict[str, Any]
    reason: str | None
    created_at: datetime
    decided_at: datetime | None
    archive_sha256: str
    archive_size: int


@dataclass(frozen=True)
class Live:
    """What the replicas' poll reads: a served version and its archive's sha256."""

    name: str
    role: str
    version: str
    archive_sha256: str


def _info(row: ModelVersion) -> Version:
    return Version(
        name=row.name,
        version=row.version,
        role=row.role,
        parent_version=row.parent_version,
        replaces=row.replaces,
        lineage=dict(row.lineage or {}),
        reason=row.reason,
        created_at=row.created_at,
        decided_at=row.decided_at,
        archive_sha256=row.archive_sha256,
        archive_size=row.archive_size,
    )


async def _lock(session: AsyncSession, name: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:key, hashtext(:name))"),
            {"key": REGISTRY_LOCK_KEY, "name": name},
        )


async def _row(session: AsyncSession, name: str, version: str) -> ModelVersion | None:
    stmt = select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)
    return (await session.scalars(stmt)).one_or_none()


async def _row_in_role(session: AsyncSession, name: str, role: str) -> ModelVersion | None:
    stmt = select(ModelVersion).where(ModelVersion.name == name, ModelVersion.role == role)
    return (await session.scalars(stmt)).one_or_none()


async def _existing(session: AsyncSession, name: str, version: str) -> ModelVersion:
    row = await _row(session, name, version)
    if row is None:
        raise RegistryError(f"{name} has no version {version} in the registry (see `lstmbot models list`)")
    return row


def lineage_of(meta: Mapping[str, Any]) -> dict[str, Any]:
    """What a bundle itself records about its making: held-out metrics, preference data."""
    lineage: dict[str, Any] = {}
    metrics = meta.get("metrics")
    if isinstance(metrics, dict) and isinstance(metrics.get("heldout"), dict):
        lineage["heldout"] = metrics["heldout"]
    if isinstance(meta.get("preferences"), dict):
        lineage["preferences"] = meta["preferences"]
    if isinstance(meta.get("corpus"), dict) and "name" in meta["corpus"]:
        lineage["corpus"] = meta["corpus"]["name"]
    return lineage


def parent_of(meta: Mapping[str, Any]) -> str | None:
    """The version a fine-tuned bundle started from ("name@version" in its preferences)."""
    preferences = meta.get("preferences")
    base = preferences.get("base") if isinstance(preferences, dict) else None
    if not base:
        return None
    return str(base).rpartition("@")[2] or None


async def _crown(session: AsyncSession, row: ModelVersion, now: datetime) -> None:
    """Make `row` the champion: the current one (if another) is retired first, replaced by it."""
    old = await _row_in_role(session, row.name, CHAMPION)
    if old is row:
        return
    if old is not None:
        old.role, old.reason, old.decided_at = RETIRED, f"replaced by {row.version}", now
        await session.flush()  # before the new champion's row: one champion at any moment
    row.role, row.reason, row.decided_at = CHAMPION, None, now
    row.replaces = old.version if old is not None else None
    await session.flush()


async def publish(
    session: AsyncSession,
    *,
    bundle: Path | Packed,
    role: str = CHALLENGER,
    lineage: Mapping[str, Any] | None = None,
    name: str | None = None,
    parent: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> Version:
    """Store a bundle folder (packed off the event loop) as `name`'s challenger or champion,
    or as rejected with its `reason` (never served: the one-challenger rule does not apply).

    `name` defaults to the bundle's own; the version is always the bundle's (what samples
    store). Publishing the same bundle again is a no-op; a different bundle under a version
    already stored, or a second challenger, is refused. As champion it replaces the current
    one (retired, "replaced by ..."), exactly as `promote`."""
    if role not in (*LIVE_ROLES, REJECTED):
        raise RegistryError(f"a version is published as {', '.join(LIVE_ROLES)} or {REJECTED}, not {role!r}")
    if (role == REJECTED) != bool(reason):
        raise RegistryError("a version published as rejected needs a reason, and only then has one")
    packed = bundle if isinstance(bundle, Packed) else await asyncio.to_thread(pack, bundle)
    name = check_model_name(name or packed.name)
    now = now or utcnow()
    await _lock(session, name)
    existing = await _row(session, name, packed.version)
    if existing is not None:
        if existing.archive_sha256 != packed.sha256:
            raise RegistryError(
                f"{name} {packed.version} is already in the registry with other contents: "
                "a new bundle needs its own version"
            )
        if existing.role != role:
            raise RegistryError(
                f"{name} {packed.version} is already in the registry as {existing.role}"
                + (f": `lstmbot models promote {name} {packed.version}`" if role == CHAMPION else "")
            )
        return _info(existing)
    if role == CHALLENGER:
        current = await _row_in_role(session, name, CHALLENGER)
        if current is not None:
            raise RegistryError(
                f"{name} already has a challenger ({current.version}): promote, reject or retire it first"
            )
    row = ModelVersion(
        name=name,
        version=packed.version,
        role=RETIRED,  # until placed below, so the one-per-role index never sees two at once
        parent_version=parent if parent is not None else parent_of(packed.meta),
        lineage={**lineage_of(packed.meta), **dict(lineage or {})},
        created_at=now,
        archive_sha256=packed.sha256,
        archive_size=len(packed.data),
        archive=packed.data,
    )
    session.add(row)
    await session.flush()
    if role == CHAMPION:
        await _crown(session, row, now)
    elif role == REJECTED:
        row.role, row.reason, row.decided_at = REJECTED, reason, now
        await session.flush()
    else:
        row.role, row.decided_at = CHALLENGER, None
        await session.flush()
    return _info(row)


async def promote(session: AsyncSession, *, name: str, version: str, now: datetime | None = None) -> Version:
    """Make a challenger (or a retired version) the champion; the old champion is retired,
    "replaced by <version>". Promoting the champion again changes nothing."""
    await _lock(session, name)
    row = await _existing(session, name, version)
    if row.role == REJECTED:
        why = row.reason or "no reason given"
        raise RegistryError(f"{name} {version} was rejected ({why}): not promoted")
    await _crown(session, row, now or utcnow())
    return _info(row)


async def retire(
    session: AsyncSession, *, name: str, version: str, reason: str, now: datetime | None = None
) -> Version:
    """Take a champion or challenger out of service. Without a champion the name is served
    from MODEL_DIR again (where it has a bundle there). Retiring it again changes nothing."""
    await _lock(session, name)
    row = await _existing(session, name, version)
    if row.role == REJECTED:
        raise RegistryError(f"{name} {version} was rejected: it is not in service")
    if row.role != RETIRED:
        row.role, row.reason, row.decided_at = RETIRED, reason, now or utcnow()
        await session.flush()
    return _info(row)


async def reject(
    session: AsyncSession, *, name: str, version: str, reason: str, now: datetime | None = None
) -> Version:
    """A challenger failed its tests: out of service for good (it cannot be promoted)."""
    await _lock(session, name)
    row = await _existing(session, name, version)
    if row.role not in (CHALLENGER, REJECTED):
        raise RegistryError(f"only a challenger is rejected; {name} {version} is the {row.role}")
    if row.role == CHALLENGER:
        row.role, row.reason, row.decided_at = REJECTED, reason, now or utcnow()
        await session.flush()
    return _info(row)


async def rollback(
    session: AsyncSession, *, name: str, reason: str | None = None, now: datetime | None = None
) -> Version:
    """Bring back the champion the current one replaced; the current one is retired. Repeated,
    it walks further back. Returns the champion now."""
    await _lock(session, name)
    current = await _row_in_role(session, name, CHAMPION)
    if current is None:
        raise RegistryError(f"{name} has no champion in the registry: replicas serve the bundle in MODEL_DIR")
    previous = await _row(session, name, current.replaces) if current.replaces else None
    if previous is None or previous.role != RETIRED:
        raise RegistryError(
            f"{name} {current.version} replaced no earlier version in the registry; "
            f"`lstmbot models retire {name} {current.version}` goes back to the bundle in MODEL_DIR"
        )
    now = now or utcnow()
    why = f"rolled back to {previous.version}" + (f": {reason}" if reason else "")
    current.role, current.reason, current.decided_at = RETIRED, why, now
    await session.flush()
    previous.role, previous.reason, previous.decided_at = CHAMPION, None, now
    await session.flush()
    return _info(previous)


async def champion_of(session: AsyncSession, *, name: str) -> Version | None:
    """The name's champion in the registry (None: it is served from MODEL_DIR)."""
    row = await _row_in_role(session, name, CHAMPION)
    return _info(row) if row is not None else None


async def challenger_of(session: AsyncSession, *, name: str) -> Version | None:
    """The name's challenger, if it has one."""
    row = await _row_in_role(session, name, CHALLENGER)
    return _info(row) if row is not None else None


async def get_version(session: AsyncSession, *, name: str, version: str) -> Version | None:
    """One version of a model, if it is in the registry."""
    row = await _row(session, name, version)
    return _info(row) if row is not None else None


async def list_versions(session: AsyncSession, *, name: str | None = None) -> list[Version]:
    """Every version (of one model, or of all), by name, newest first."""
    newest = (ModelVersion.created_at.desc(), ModelVersion.id.desc())
    stmt = select(ModelVersion).order_by(ModelVersion.name, *newest)
    if name is not None:
        stmt = stmt.where(ModelVersion.name == name)
    return [_info(row) for row in await session.scalars(stmt)]


async def live_versions(session: AsyncSession) -> list[Live]:
    """Every champion and challenger: the replicas' poll, one small query (no bundles read)."""
    stmt = select(
        ModelVersion.name, ModelVersion.role, ModelVersion.version, ModelVersion.archive_sha256
    ).where(ModelVersion.role.in_(LIVE_ROLES))
    return [Live(*row) for row in (await session.execute(stmt)).all()]


async def fetch_archive(session: AsyncSession, *, name: str, version: str) -> tuple[bytes, str] | None:
    """A version's packed bundle and its sha256 (None: no such version)."""
    stmt = select(ModelVersion.archive, ModelVersion.archive_sha256).where(
        ModelVersion.name == name, ModelVersion.version == version
    )
    row = (await session.execute(stmt)).one_or_none()
    return (bytes(row[0]), str(row[1])) if row is not None else None
