"""`lstmbot models`: the model registry (list, publish, promote, retire, reject, rollback).

Every replica polls the registry (MODEL_POLL_S) and loads a new champion or challenger without
a restart; the bundles travel in the database, so this command is the whole deployment of a
new version: run it anywhere that reaches the database.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cli import CliError
from cli.bundles import bundle_config


def register(subparsers: Any) -> None:
    """Add the `models` subcommand and its actions."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database-url", help="the bot's database (default: $DATABASE_URL)")
    p: argparse.ArgumentParser = subparsers.add_parser(
        "models",
        help="the model registry: publish, promote, retire or roll back model versions",
        description="Versions of each model in the bot's database. Running replicas pick up a "
        "new champion or challenger within MODEL_POLL_S seconds, without a restart. A model "
        "with no champion in the registry is served from MODEL_DIR.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=[common], help="every version, newest first")
    listing.add_argument("name", nargs="?", help="only this model")
    pub = actions.add_parser("publish", parents=[common], help="store a bundle folder as a new version")
    pub.add_argument("bundle", type=Path, metavar="BUNDLE_DIR", help="the bundle folder")
    pub.add_argument(
        "--role",
        choices=("challenger", "champion"),
        default="challenger",
        help="challenger (default: loaded for duels, not served) or champion (served to users now)",
    )
    pub.add_argument("--name", help="the model it is a version of (default: the bundle's own name)")
    pub.add_argument(
        "--parent", metavar="VERSION", help="the version it was tuned from (default: the bundle's)"
    )
    pub.add_argument("--lineage", type=Path, metavar="FILE", help="a JSON object to record with it")
    promote = actions.add_parser("promote", parents=[common], help="make a version the champion")
    retire = actions.add_parser("retire", parents=[common], help="take a version out of service")
    reject = actions.add_parser("reject", parents=[common], help="a challenger failed: never promote it")
    for action in (promote, retire, reject):
        action.add_argument("name", metavar="NAME")
        action.add_argument("version", metavar="VERSION")
    retire.add_argument("--reason", default="retired by hand", help="why (kept with the version)")
    reject.add_argument("--reason", default="rejected by hand", help="why (kept with the version)")
    back = actions.add_parser("rollback", parents=[common], help="bring back the previous champion")
    back.add_argument("name", metavar="NAME")
    back.add_argument("--reason", help="why (kept with the version rolled back)")
    p.set_defaults(func=run)


def _lineage(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"cannot read the lineage file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"{path}: the lineage must be a JSON object")
    return data


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else "-"


def _table(rows: list[Any]) -> str:
    if not rows:
        return "the registry is empty: every model is served from MODEL_DIR"
    header = ("NAME", "VERSION", "ROLE", "CREATED", "DECIDED", "SIZE", "PARENT", "REASON")
    lines = [header] + [
        (
            r.name,
            r.version,
            r.role,
            _when(r.created_at),
            _when(r.decided_at),
            _megabytes(r.archive_size),
            r.parent_version or "-",
            r.reason or "",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


async def _check_champion(db: Any, name: str) -> None:
    """A challenger is dueled against its model's champion (the registry's, or a bundle of that
    name the bot serves from MODEL_DIR): refuse one that has none, which would be served and
    never dueled (an operator pass published `nietzsche-char-tuned`, its folder's name)."""
    from bot.db.repository import models as registry
    from cli.bundles import find_model

    if not name or find_model(name) is not None:
        return
    if await db.run(lambda s: registry.champion_of(s, name=name), write=False) is None:
        raise CliError(
            f"no champion of {name!r} (neither in the registry nor in a models folder): a challenger "
            "is dueled against its champion; give --name MODEL to make this bundle a version of one"
        )


async def _act(args: argparse.Namespace, url: str) -> str:
    from bot.db import repository as repo
    from bot.db.database import Database
    from bot.db.repository import models as registry

    db = Database.from_url(url)
    try:
        if args.action == "list":
            return _table(await db.run(lambda s: repo.list_versions(s, name=args.name), write=False))
        if args.action == "publish":
            lineage = _lineage(args.lineage)
            config = bundle_config(Path(args.bundle))  # {}: publishing then says what is wrong
            name, version = args.name or str(config.get("name", "")), str(config.get("version", ""))
            if args.role == "challenger":
                await _check_champion(db, name)
            there = await db.run(lambda s: registry.get_version(s, name=name, version=version), write=False)
            done = await db.run(
                lambda s: registry.publish(
                    s, bundle=args.bundle, role=args.role, lineage=lineage, name=args.name, parent=args.parent
                )
            )
            if there is not None:  # the same contents (publish refuses others): nothing to do
                return (
                    f"{done.name} {done.version} is already in the registry as {done.role}: nothing changed"
                )
            replaced = f", replacing {done.replaces}" if done.replaces else ""
            return (
                f"published {done.name} {done.version} as {done.role}{replaced} "
                f"({_megabytes(done.archive_size)}, sha256 {done.archive_sha256[:12]}…)"
            )
        if args.action == "promote":
            done = await db.run(lambda s: registry.promote(s, name=args.name, version=args.version))
            replaced = f"; {done.replaces} retired" if done.replaces else ""
            return f"{done.name} {done.version} is the champion{replaced}"
        if args.action == "retire":
            done = await db.run(
                lambda s: registry.retire(s, name=args.name, version=args.version, reason=args.reason)
            )
            return f"{done.name} {done.version} is retired ({done.reason})"
        if args.action == "reject":
            done = await db.run(
                lambda s: registry.reject(s, name=args.name, version=args.version, reason=args.reason)
            )
            return f"{done.name} {done.version} is rejected ({done.reason})"
        if args.action == "rollback":
            done = await db.run(lambda s: registry.rollback(s, name=args.name, reason=args.reason))
            return f"{done.name} {done.version} is the champion again"
        raise CliError(f"unknown action {args.action!r}")  # pragma: no cover - argparse decides
    finally:
        await db.dispose()


def run(args: argparse.Namespace) -> int:
    """Run one registry action against the bot's database."""
    import asyncio

    from sqlalchemy import exc as sa_exc
    from sqlalchemy import make_url

    from bot.db.engine import is_sqlite, sqlite_file
    from bot.db.repository import RegistryError
    from bot.settings import get_settings
    from core.bundle import BundleError

    url: str = args.database_url or get_settings().database_url
    shown = make_url(url).render_as_string(hide_password=True)
    path = sqlite_file(url) if is_sqlite(url) else None
    if path is not None and not path.exists():
        raise CliError(f"no database at {path}; run `lstmbot db upgrade` first")
    try:
        print(asyncio.run(_act(args, url)))
    except (RegistryError, BundleError, ValueError) as exc:
        raise CliError(str(exc)) from None
    except sa_exc.DBAPIError as exc:
        hint = "; run `lstmbot db upgrade` first" if "model_versions" in str(exc) else ""
        raise CliError(f"cannot use the database at {shown}: {exc.orig}{hint}") from None
    except OSError as exc:
        raise CliError(str(exc)) from None
    if args.action in ("publish", "promote", "retire", "reject", "rollback"):
        print("running replicas pick this up within MODEL_POLL_S seconds (default 10)")
    return 0
