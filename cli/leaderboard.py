"""`lstmbot leaderboard`: the duel leaderboard as a table, and its chart as a PNG file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli import CliError


def register(subparsers: Any) -> None:
    """Add the `leaderboard` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "leaderboard",
        help="strength of each (model, temperature) arm from counted duel votes",
        description="Fit Bradley-Terry strengths (95% bootstrap intervals) to the counted duel "
        "votes and print the table /leaderboard shows; --png also writes its chart.",
    )
    p.add_argument("--png", metavar="FILE", type=Path, help="also write the chart to FILE")
    p.add_argument(
        "--rounds",
        type=int,
        default=200,
        metavar="N",
        help="bootstrap rounds for the intervals (default 200)",
    )
    p.add_argument("--database-url", help="database to read (default: $DATABASE_URL)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the table; write the chart when asked."""
    import asyncio

    from sqlalchemy import exc as sa_exc
    from sqlalchemy import make_url

    from bot.db.database import Database
    from bot.db.engine import is_sqlite, sqlite_file
    from bot.promotion import Rules
    from bot.settings import get_settings
    from bot.standings import challenger_line, compute, load_votes, picture, plain, table
    from bot.texts import text

    if args.rounds < 0:
        raise CliError("--rounds must be 0 or more")
    url: str = args.database_url or get_settings().database_url
    shown = make_url(url).render_as_string(hide_password=True)
    path = sqlite_file(url) if is_sqlite(url) else None
    if path is not None and not path.exists():
        raise CliError(f"no database at {path}; run `lstmbot db upgrade` first")

    settings = get_settings()
    test = Rules(settings.promotion_alpha, settings.promotion_min_votes, settings.promotion_max_votes)

    async def load() -> Any:
        db = Database.from_url(url)
        try:
            votes, thumbs = await db.run(load_votes, write=False)
            return votes, thumbs, await db.run(lambda s: _challengers(s, test), write=False)
        finally:
            await db.dispose()

    try:
        votes, thumbs, challengers = asyncio.run(load())
    except sa_exc.DBAPIError as exc:
        hint = "; run `lstmbot db upgrade` first" if "table" in str(exc).lower() else ""
        raise CliError(f"cannot read the database at {shown}: {exc.orig}{hint}") from None
    standings = compute(votes, thumbs, rounds=args.rounds)
    print(plain(table(standings, "en")))
    for name, version, where in challengers:  # as /leaderboard ends (an operator pass missed it)
        print(plain(challenger_line("en", name, version, where, test.alpha)))
    if args.png is not None:
        try:
            args.png.write_bytes(picture(standings, text("en", "leaderboard_caption")))
        except OSError as exc:
            raise CliError(f"cannot write the chart: {exc}") from None
        print(f"chart written to {args.png}")
    return 0


async def _challengers(session: Any, test: Any) -> list[tuple[str, str, Any]]:
    """Each registry challenger and where it stands against its champion: the registry's, else
    the bundle of that name the bot serves from a models folder (skipped where there is none)."""
    from bot.challengers import standing_against
    from bot.db.repository import models as registry
    from cli.bundles import bundle_config, find_model

    found = []
    for live in await registry.live_versions(session):
        if live.role != "challenger":
            continue
        challenger = await registry.challenger_of(session, name=live.name)
        champion = await registry.champion_of(session, name=live.name)
        served = find_model(live.name)
        version = champion.version if champion is not None else None
        if version is None and served is not None:
            version = bundle_config(served).get("version")
        if challenger is not None and version is not None:
            found.append(
                (live.name, challenger.version, await standing_against(session, challenger, version, test))
            )
    return sorted(found, key=lambda row: row[0])
