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
    from bot.settings import get_settings
    from bot.standings import compute, load_votes, picture, plain, table
    from bot.texts import text

    if args.rounds < 0:
        raise CliError("--rounds must be 0 or more")
    url: str = args.database_url or get_settings().database_url
    shown = make_url(url).render_as_string(hide_password=True)
    path = sqlite_file(url) if is_sqlite(url) else None
    if path is not None and not path.exists():
        raise CliError(f"no database at {path}; run `lstmbot db upgrade` first")

    async def load() -> Any:
        db = Database.from_url(url)
        try:
            return await db.run(load_votes, write=False)
        finally:
            await db.dispose()

    try:
        votes, thumbs = asyncio.run(load())
    except sa_exc.DBAPIError as exc:
        hint = "; run `lstmbot db upgrade` first" if "table" in str(exc).lower() else ""
        raise CliError(f"cannot read the database at {shown}: {exc.orig}{hint}") from None
    standings = compute(votes, thumbs, rounds=args.rounds)
    print(plain(table(standings, "en")))
    if args.png is not None:
        try:
            args.png.write_bytes(picture(standings, text("en", "leaderboard_caption")))
        except OSError as exc:
            raise CliError(f"cannot write the chart: {exc}") from None
        print(f"chart written to {args.png}")
    return 0
