"""`lstmbot learn`'s database side: the champion, what was gathered since it was made, and the
verdict written to the registry.

The champion is the registry's (its bundle fetched from the database and unpacked, verified,
into a cache folder) or, for a model the registry does not know, the bundle in MODEL_DIR. The
data is what the bot stored since the champion was made (the registry row's `created_at`;
a MODEL_DIR bundle's own `created` in config.json), exported by bot/db/preference_export.py.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.db.database import Database
from bot.db.models import CHALLENGER, REJECTED, utcnow
from bot.db.preference_export import Gathered, Scope, write_learning_rows
from bot.db.repository import models as registry
from cli import CliError
from cli.bundles import bundle_config, resolve_model
from core.bundle import load_bundle
from core.bundle_archive import unpack

REGISTRY, MODEL_DIR = "registry", "MODEL_DIR"


@dataclass(frozen=True)
class Champion:
    """The version a round fine-tunes from and measures against."""

    name: str
    version: str
    folder: Path
    made: datetime | None  # None: a bundle that does not say (then every row counts)
    source: str  # REGISTRY or MODEL_DIR


@dataclass(frozen=True)
class Round:
    """What a learning round starts from."""

    champion: Champion
    until: datetime  # rows made before this moment (the round's start)
    gathered: Gathered
    challenger: str | None  # a challenger already in duels (its version), if any


def _created(meta: dict[str, Any]) -> datetime | None:
    """A bundle's `created` time (config.json), timezone-aware."""
    try:
        made = datetime.fromisoformat(str(meta["created"]))
    except (KeyError, ValueError):
        return None
    return made.replace(tzinfo=UTC) if made.tzinfo is None else made


async def _champion(db: Database, name: str, cache: Path) -> tuple[Champion, str | None]:
    """The champion (unpacked from the registry, or MODEL_DIR's) and the challenger's version."""

    async def roles(session: Any) -> tuple[registry.Version | None, registry.Version | None]:
        return await registry.champion_of(session, name=name), await registry.challenger_of(
            session, name=name
        )

    row, challenger = await db.run(roles, write=False)
    waiting = challenger.version if challenger is not None else None
    if row is None:
        folder = resolve_model(name, as_path="give MODEL as the path of a bundle folder")
        bundle = await asyncio.to_thread(load_bundle, folder)  # checked now, not after the export
        return Champion(name, bundle.version, folder, _created(dict(bundle.meta)), MODEL_DIR), waiting
    fetched = await db.run(lambda s: registry.fetch_archive(s, name=name, version=row.version), write=False)
    if fetched is None:
        raise CliError(f"{name} {row.version} left the registry while being fetched: run again")
    data, sha256 = fetched
    folder = await asyncio.to_thread(unpack, data, sha256, cache / name / f"{row.version}-{sha256[:16]}")
    # Made when its bundle was, not when it was published: the shipped bundle, published by hand
    # before its first successor, has been rated since it shipped (an operator pass found its
    # backlog dropped by the publication).
    made = _created(bundle_config(folder)) or row.created_at
    return Champion(name, row.version, folder, made, REGISTRY), waiting


async def gather(
    url: str, name: str, preferences: Path, *, cache: Path, include_private: bool, salt: str
) -> Round:
    """Find the champion and write every preference about `name` made since it to `preferences`."""
    db = Database.from_url(url)
    try:
        champion, challenger = await _champion(db, name, cache)
        until = utcnow()
        scope = Scope(since=champion.made, until=until, model_name=name)

        async def export(session: Any) -> tuple[Gathered, str]:
            out = io.StringIO()  # in memory: a retried read must not write the file twice
            gathered = await write_learning_rows(
                session, out, scope=scope, include_private=include_private, salt=salt
            )
            return gathered, out.getvalue()

        gathered, text = await db.run(export, write=False)
    finally:
        await db.dispose()
    await asyncio.to_thread(preferences.write_text, text, encoding="utf-8")
    return Round(champion, until, gathered, challenger)


async def record(
    url: str, name: str, folder: Path, *, lineage: dict[str, Any], reason: str | None
) -> registry.Version:
    """Publish the challenger, or, with a `reason`, store it as rejected."""
    db = Database.from_url(url)
    try:
        return await db.run(
            lambda s: registry.publish(
                s,
                bundle=folder,
                role=REJECTED if reason else CHALLENGER,
                lineage=lineage,
                name=name,
                reason=reason,
            )
        )
    finally:
        await db.dispose()
