"""`lstmbot export`: write rated samples as JSON lines or CSV, ready for fine-tuning."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from cli import CliError


def _since(text: str) -> Any:
    from bot.db.export import parse_since

    try:
        return parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: Any) -> None:
    """Add the `export` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "export",
        help="export generated samples with their settings and ratings",
        description="Stream every stored sample (seed, settings, text, vote counts) as JSON "
        "lines or CSV. Nothing that identifies a user is written unless --include-users.",
    )
    p.add_argument(
        "--format",
        choices=("jsonl", "csv", "kto", "dpo"),
        default="jsonl",
        help="output format (default: jsonl); kto: rated samples as TRL KTOTrainer rows "
        '{"prompt","completion","label"}; dpo: duel wins as TRL DPOTrainer rows '
        '{"prompt","chosen","rejected"}',
    )
    p.add_argument("--strict", action="store_true", help="kto: only samples whose votes were unanimous")
    p.add_argument(
        "--inline-picks",
        action="store_true",
        help="dpo: also the inline picks (the continuation sent over each one offered with it)",
    )
    p.add_argument(
        "--include-private",
        action="store_true",
        help="kto/dpo: also samples never shared, duels made in private chats and inline picks never shared",
    )
    p.add_argument(
        "--since",
        type=_since,
        metavar="DATE",
        help="only samples created on or after DATE (YYYY-MM-DD or ISO datetime, UTC)",
    )
    p.add_argument(
        "--min-votes",
        type=int,
        metavar="N",
        help="only samples whose up-votes minus down-votes is at least N",
    )
    p.add_argument(
        "--model",
        metavar="NAME",
        help="only samples from this model bundle (dpo: duels with it on both sides)",
    )
    p.add_argument(
        "--include-users",
        action="store_true",
        help="add Telegram user/chat ids, names and chat titles (personal data!)",
    )
    p.add_argument(
        "--out", "-o", metavar="FILE", default="-", help="file to write (default: standard output)"
    )
    p.add_argument("--database-url", help="database to read (default: $DATABASE_URL)")
    p.set_defaults(func=run)


async def _export(args: argparse.Namespace, url: str, out: TextIO) -> int:
    from bot.db.database import Database
    from bot.db.export import write_export

    db = Database.from_url(url)
    try:
        async with db.sessions() as session:
            if args.format in ("kto", "dpo"):
                return await _preferences(session, args, out)
            return await write_export(
                session,
                out,
                format=args.format,
                since=args.since,
                min_votes=args.min_votes,
                model_name=args.model,
                include_users=args.include_users,
            )
    finally:
        await db.dispose()


def preference_salt() -> str:
    """What user ids are hashed with in preference rows: the bot's token (secret, so a hash
    cannot be reversed by trying every id), or nothing when no token is configured."""
    from bot.settings import get_settings

    token = get_settings().telegram_token
    return token.get_secret_value() if token else ""


async def _preferences(session: Any, args: argparse.Namespace, out: TextIO) -> int:
    from bot.db.preference_export import Scope, write_preferences

    return await write_preferences(
        session,
        out,
        format=args.format,
        strict=args.strict,
        include_users=args.include_users,
        include_private=args.include_private,
        inline=args.inline_picks,
        salt=preference_salt(),
        scope=Scope(since=args.since, model_name=args.model),
    )


def run(args: argparse.Namespace) -> int:
    """Stream the export to a file (written atomically) or to standard output."""
    import asyncio

    from sqlalchemy import exc as sa_exc
    from sqlalchemy import make_url

    from bot.db.engine import is_sqlite, sqlite_file
    from bot.settings import get_settings

    if args.inline_picks and args.format != "dpo":
        raise CliError("--inline-picks adds rows to --format dpo")
    url: str = args.database_url or get_settings().database_url
    shown = make_url(url).render_as_string(hide_password=True)
    path = sqlite_file(url) if is_sqlite(url) else None
    if path is not None and not path.exists():
        raise CliError(f"no database at {path}; run `lstmbot db upgrade` first")
    try:
        if args.out == "-":
            count = asyncio.run(_export(args, url, sys.stdout))
            sys.stdout.flush()
        else:
            target = Path(args.out)
            partial = target.with_name(target.name + ".partial")
            try:
                # newline="" keeps line breaks inside CSV fields as they are.
                with partial.open("w", encoding="utf-8", newline="") as out:
                    count = asyncio.run(_export(args, url, out))
                partial.replace(target)  # never leave a half-written export under the real name
            finally:
                partial.unlink(missing_ok=True)
    except sa_exc.DBAPIError as exc:
        hint = "; run `lstmbot db upgrade` first" if "table" in str(exc).lower() else ""
        raise CliError(f"cannot read the database at {shown}: {exc.orig}{hint}") from None
    except BrokenPipeError:
        # The reader stopped early (`| head`): it has what it wanted, which is no failure. Point
        # stdout at /dev/null so that the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        raise CliError(f"cannot export: {exc}") from None
    where = "standard output" if args.out == "-" else args.out
    dpo = "preferences (duels and inline picks)" if args.inline_picks else "duel preferences"
    what = {"kto": "rated samples", "dpo": dpo}.get(args.format, "samples")
    print(f"exported {count} {what} to {where}", file=sys.stderr)
    if count == 0 and args.model:  # a misspelt name exports nothing: say which filter it was
        print(
            f"note: nothing matched --model {args.model!r} (a model name as stored, e.g. nietzsche-char)",
            file=sys.stderr,
        )
    return 0
