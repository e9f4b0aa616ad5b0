"""Soak: many users for minutes, 1% of Bot API calls failing, and the database going away once.

    python -m bench.soak [--minutes 10] [--users 50] [--postgres URL]

Each simulated user loops: send a seed, wait for the sample, press 👍 on it. Half-way through,
the database is taken away for 5 s (PostgreSQL: connections refused and terminated; SQLite:
another process holds the write lock). Reported: requests answered, unhandled exceptions in the
bot's log, ratings acknowledged to users versus ratings in the database (none may be lost),
and the bot's RSS after warm-up versus at the end (must stay within 10%).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import time

import psutil
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bench.harness import running_bot, summary
from bot.db.database import Database
from bot.db.models import Rating
from sandbox.testing import SandboxServer

LIKED = "You liked it 👍"


async def user_loop(sb: SandboxServer, user: dict[str, object], end: float, stats: dict[str, object]) -> None:
    """One person: seed, wait, like; repeat until `end`."""
    rng = random.Random(int(user["id"]))  # type: ignore[call-overload]
    chat_id = int(user["id"])  # type: ignore[call-overload]
    latencies: list[float] = stats["latencies"]  # type: ignore[assignment]
    acknowledged: set[int] = stats["acknowledged"]  # type: ignore[assignment]
    while time.monotonic() < end:
        before = len(sb.bot_messages(chat_id))
        started = time.monotonic()
        sb.send(user, chat_id, rng.choice(["the will to truth", "what then", "morality is"]))
        try:
            (reply,) = await sb.wait_for_bot_messages(chat_id, after=before, timeout=60)
        except TimeoutError:
            stats["unanswered"] = int(stats["unanswered"]) + 1  # type: ignore[call-overload]
            stats["unanswered_at"].append(started)  # type: ignore[attr-defined]
            continue
        latencies.append(time.monotonic() - started)
        if reply.get("reply_markup"):
            query = sb.press(user, reply, button="👍")
            try:
                answer = await sb.wait_for_answer(query, timeout=30)
                if answer.get("text") == LIKED:
                    acknowledged.add(reply["message_id"] * 1_000_000 + chat_id)
            except TimeoutError:
                pass
        await asyncio.sleep(rng.uniform(2, 8))


async def database_outage(url: str, postgres_admin: str | None, seconds: float = 5.0) -> str:
    """Take the database away for a few seconds; returns what was done."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        blocker = sqlite3.connect(path, timeout=30)
        blocker.execute("BEGIN EXCLUSIVE")
        await asyncio.sleep(seconds)
        blocker.rollback()
        blocker.close()
        return f"SQLite write-locked by another process for {seconds:g} s"
    assert postgres_admin
    name = url.rsplit("/", 1)[1]
    admin = create_async_engine(postgres_admin, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            await conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
        await asyncio.sleep(seconds)
        async with admin.connect() as conn:
            await conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    finally:
        await admin.dispose()
    return f"PostgreSQL refused and dropped connections for {seconds:g} s"


async def ratings_in(url: str) -> int:
    db = Database.from_url(url)

    async def work(session: AsyncSession) -> int:
        return int(
            await session.scalar(select(func.count()).select_from(Rating).where(Rating.score == 1)) or 0
        )

    try:
        return await db.run(work, write=False)
    finally:
        await db.dispose()


async def main_async(args: argparse.Namespace) -> None:
    """Run the soak and print the report."""
    temp_db = None
    if args.postgres:
        from bot.db.scratch import create_postgres_database

        temp_db = await create_postgres_database(args.postgres, tag="soak")
    stats: dict[str, object] = {"latencies": [], "acknowledged": set(), "unanswered": 0, "unanswered_at": []}
    async with SandboxServer() as sb:
        env = {"RATE_LIMIT_PER_MINUTE": "1000", "LOG_LEVEL": "INFO"}
        async with running_bot(sb, database_url=temp_db, env=env) as bot:
            process = psutil.Process(bot.proc.pid)
            users = [sb.user(f"Soak{i}") for i in range(args.users)]
            end = time.monotonic() + args.minutes * 60
            loops = [asyncio.create_task(user_loop(sb, u, end, stats)) for u in users]
            await asyncio.sleep(min(60.0, args.minutes * 60 / 5))  # warm-up
            rss_warm = process.memory_info().rss
            sb.faults.randomly(0.01, "500", seed=7)
            await asyncio.sleep(max(0.0, end - time.monotonic()) / 2)
            outage_at = time.monotonic()
            outage = await database_outage(bot.database_url, args.postgres)
            await asyncio.gather(*loops)
            rss_end = process.memory_info().rss
            sb.faults.randomly(0)
            await asyncio.sleep(2)
            in_db = await ratings_in(bot.database_url)
            fired = len(sb.faults.fired)
        log = bot.log.read_text(errors="replace")
    if temp_db:
        from bot.db.scratch import drop_postgres_database

        await drop_postgres_database(temp_db)
    latencies: list[float] = stats["latencies"]  # type: ignore[assignment]
    acknowledged: set[int] = stats["acknowledged"]  # type: ignore[assignment]
    handled = log.count("error while handling an update")
    # Anything logged at ERROR other than the error handler's own line, or asyncio's reports of
    # exceptions nobody awaited, is an exception the bot did not handle.
    unhandled = sum(
        1
        for line in log.splitlines()
        if (" ERROR " in line and "error while handling an update" not in line)
        or "Task exception was never retrieved" in line
        or "Exception in callback" in line
    )
    print(
        f"Soak: {args.users} users for {args.minutes:g} min, 1% of Bot API calls answering 500 "
        f"({fired} injected), {outage}"
    )
    print(f"requests answered: {len(latencies)}, unanswered: {stats['unanswered']}; {summary(latencies)}")
    unanswered_at: list[float] = stats["unanswered_at"]  # type: ignore[assignment]
    if unanswered_at:
        when = ", ".join(f"{at - outage_at:+.1f} s" for at in unanswered_at)
        print(f"unanswered seeds were sent at (relative to the outage's start): {when}")
    print(
        f"errors handled by the bot's error handler (users told 'temporarily unavailable'): {handled}; "
        f"unhandled exceptions: {unhandled}"
    )
    print(
        f"ratings acknowledged to users: {len(acknowledged)}, in the database: {in_db}, "
        f"lost: {max(0, len(acknowledged) - in_db)}"
    )
    print(
        f"bot RSS after warm-up {rss_warm / 2**20:.0f} MB, at the end {rss_end / 2**20:.0f} MB "
        f"({(rss_end / rss_warm - 1) * 100:+.1f}%, limit +10%)"
    )


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument(
        "--postgres", help="PostgreSQL server URL (postgresql+asyncpg://...) instead of SQLite"
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
