"""Storage throughput: record-sample + rate with many concurrent writers, SQLite vs PostgreSQL.

    python -m bench.storage [--writers 50] [--rounds 20] [--postgres-url URL] [--sqlite-without-lock]

Each writer is one Telegram user doing what the bot does per generation and per click, as
separate units of work through ``Database.run`` (the same retrying path as the handlers):
record a sample, then rate one of a few "hot" samples that every writer rates (so raters
contend for the same rows), with a random up/down that sometimes changes an earlier vote.
After the run the database is checked against the writers' own log: every sample present,
exactly one rating row per (user, sample) with the last score given, and every sample's
stored counters equal to a recount of its ratings.

PostgreSQL runs in a scratch database (created and dropped here) on the server of
--postgres-url, $TEST_POSTGRES_URL or a PostgreSQL $DATABASE_URL, falling back to
postgresql+asyncpg://postgres@127.0.0.1:5432/test; it is skipped when unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repository as repo
from bot.db.database import Database
from bot.db.models import DOWN, UP, Base, Rating, StoredSample
from bot.db.scratch import temporary_database

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
HOT_SAMPLES = 5


@dataclass
class Result:
    """One backend's run."""

    name: str
    wall_s: float = 0.0
    samples: int = 0
    ratings: int = 0
    record_ms: list[float] = field(default_factory=list)
    rate_ms: list[float] = field(default_factory=list)
    retries: int = 0
    verified: str = ""


def _postgres_url(cli_url: str | None) -> str:
    if cli_url:
        return cli_url
    if os.environ.get("TEST_POSTGRES_URL"):
        return os.environ["TEST_POSTGRES_URL"]
    if os.environ.get("DATABASE_URL", "").startswith("postgresql"):
        return os.environ["DATABASE_URL"]
    return DEFAULT_POSTGRES_URL


async def _reachable(url: str) -> bool:
    db = Database.from_url(url, connect_args={"timeout": 3})
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        await db.dispose()


async def _setup(db: Database, writers: int) -> tuple[list[int], int, list[int]]:
    """Create the writers' users, one group chat and the hot samples; returns their ids."""
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with db.sessions() as session:
        users = [
            await repo.get_or_create_user(session, telegram_id=10_000 + i, display_name=f"w{i}")
            for i in range(writers)
        ]
        author = await repo.get_or_create_user(session, telegram_id=1, display_name="author")
        chat = await repo.get_or_create_chat(session, telegram_id=-1, type="group", title="bench")
        hot = [
            await repo.record_sample(
                session,
                user_id=author.id,
                chat_id=chat.id,
                seed="hot ",
                model_name="bench",
                model_version="1",
                temperature=0.5,
                length=40,
                text="x" * 40,
                generation_ms=1,
                delivered=True,
            )
            for _ in range(HOT_SAMPLES)
        ]
        await session.commit()
        return [user.id for user in users], chat.id, hot


async def _timed(samples_ms: list[float], job: Awaitable[object]) -> object:
    start = time.perf_counter()
    result = await job
    samples_ms.append((time.perf_counter() - start) * 1000)
    return result


async def _writer(
    db: Database,
    result: Result,
    user_id: int,
    chat_id: int,
    hot: list[int],
    rounds: int,
    rng: random.Random,
    expected: dict[tuple[int, int], int],
) -> None:
    """One user: record a sample, then rate a hot sample, ``rounds`` times."""

    def on_retry(attempt: int, exc: BaseException) -> None:
        result.retries += 1

    for round_ in range(rounds):
        seed = f"round {round_} of {user_id}: "

        async def record(session: AsyncSession, seed: str = seed) -> int:
            sample_id = await repo.record_sample(
                session,
                user_id=user_id,
                chat_id=chat_id,
                seed=seed,
                model_name="bench",
                model_version="1",
                temperature=0.5,
                length=400,
                text="y" * 400,
                generation_ms=25,
            )
            await repo.set_sample_message_id(session, sample_id=sample_id, message_id=sample_id)
            return sample_id

        await _timed(result.record_ms, db.run(record, on_retry=on_retry))
        sample_id, score = rng.choice(hot), rng.choice((UP, DOWN))

        async def rate(
            session: AsyncSession, sample_id: int = sample_id, score: int = score
        ) -> repo.RatingState:
            return await repo.rate(session, sample_id=sample_id, user_id=user_id, score=score)

        await _timed(result.rate_ms, db.run(rate, on_retry=on_retry))
        expected[(user_id, sample_id)] = score  # this writer's last word on that pair


async def _verify(db: Database, expected: dict[tuple[int, int], int], samples: int) -> str:
    """Compare the database with the writers' log; returns "ok" or what is wrong."""
    async with db.sessions() as session:
        stored_samples = await session.scalar(select(func.count()).select_from(StoredSample))
        rows = (await session.execute(select(Rating.user_id, Rating.sample_id, Rating.score))).all()
        stored = {(user_id, sample_id): score for user_id, sample_id, score in rows}
        counters = (
            await session.execute(
                select(StoredSample.id, StoredSample.up_votes, StoredSample.down_votes).where(
                    StoredSample.up_votes + StoredSample.down_votes > 0
                )
            )
        ).all()
    problems = []
    if stored_samples != samples:
        problems.append(f"{stored_samples} samples, expected {samples}")
    if len(rows) != len(stored) or stored != expected:
        problems.append(f"{len(rows)} rating rows, expected {len(expected)} matching the log")
    for sample_id, up, down in counters:
        want_up = sum(1 for (_, s), score in expected.items() if s == sample_id and score == UP)
        want_down = sum(1 for (_, s), score in expected.items() if s == sample_id and score == DOWN)
        if (up, down) != (want_up, want_down):
            problems.append(f"sample {sample_id} counts {up}/{down}, expected {want_up}/{want_down}")
    return "ok" if not problems else "; ".join(problems[:3])


async def run_backend(
    name: str, base_url: str, writers: int, rounds: int, *, write_lock: bool = True
) -> Result:
    """Run the workload on a scratch database of ``base_url``'s backend."""
    result = Result(name)
    async with temporary_database(base_url, tag="bench") as url:
        db = Database.from_url(url)
        if not write_lock:
            db.write_turns = None
        try:
            users, chat_id, hot = await _setup(db, writers)
            expected: dict[tuple[int, int], int] = {}
            start = time.perf_counter()
            await asyncio.gather(
                *(
                    _writer(db, result, user_id, chat_id, hot, rounds, random.Random(i), expected)
                    for i, user_id in enumerate(users)
                )
            )
            result.wall_s = time.perf_counter() - start
            result.samples = len(result.record_ms)
            result.ratings = len(result.rate_ms)
            result.verified = await _verify(db, expected, HOT_SAMPLES + writers * rounds)
        finally:
            await db.dispose()
    return result


def _pct(values: list[float], q: int) -> float:
    """The q-th percentile (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def print_table(results: list[Result], writers: int, rounds: int) -> None:
    """Print the backends side by side."""
    print(
        f"\nstorage: {writers} concurrent writers x {rounds} rounds "
        f"(each round: record a sample, then rate one of {HOT_SAMPLES} shared samples)\n"
    )
    lines: list[tuple[str, Callable[[Result], str]]] = [
        ("units of work per second", lambda r: f"{(r.samples + r.ratings) / r.wall_s:,.0f}"),
        ("samples recorded per second", lambda r: f"{r.samples / r.wall_s:,.0f}"),
        ("ratings per second", lambda r: f"{r.ratings / r.wall_s:,.0f}"),
        (
            "record latency p50 / p95 (ms)",
            lambda r: f"{_pct(r.record_ms, 50):.1f} / {_pct(r.record_ms, 95):.1f}",
        ),
        ("rate latency p50 / p95 (ms)", lambda r: f"{_pct(r.rate_ms, 50):.1f} / {_pct(r.rate_ms, 95):.1f}"),
        ("transient-error retries", lambda r: str(r.retries)),
        ("wall time (s)", lambda r: f"{r.wall_s:.2f}"),
        ("rows and counters checked", lambda r: r.verified),
    ]
    width = max(len(label) for label, _ in lines) + 2
    columns = [max(22, len(r.name) + 2) for r in results]
    print("".ljust(width) + "".join(r.name.rjust(c) for r, c in zip(results, columns, strict=True)))
    for label, cell in lines:
        cells = "".join(cell(r).rjust(c) for r, c in zip(results, columns, strict=True))
        print(label.ljust(width) + cells)


async def main_async(args: argparse.Namespace) -> int:
    """Run every available backend and print the table; non-zero when a check failed."""
    results = [await run_backend("sqlite", "sqlite+aiosqlite://", args.writers, args.rounds)]
    if args.sqlite_without_lock:
        results.append(
            await run_backend(
                "sqlite (no in-process lock)",
                "sqlite+aiosqlite://",
                args.writers,
                args.rounds,
                write_lock=False,
            )
        )
    pg_url = _postgres_url(args.postgres_url)
    if await _reachable(pg_url):
        results.append(await run_backend("postgresql", pg_url, args.writers, args.rounds))
    else:
        print(f"PostgreSQL at {pg_url.split('@')[-1]} is not reachable: skipped")
    print_table(results, args.writers, args.rounds)
    return 0 if all(r.verified == "ok" for r in results) else 1


def main() -> int:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.storage", description=__doc__.split("\n")[0])
    parser.add_argument("--writers", type=int, default=50, help="concurrent writers (default: 50)")
    parser.add_argument("--rounds", type=int, default=20, help="rounds per writer (default: 20)")
    parser.add_argument("--postgres-url", help="PostgreSQL server to use (a scratch database is made)")
    parser.add_argument(
        "--sqlite-without-lock",
        action="store_true",
        help="also run SQLite without the in-process write lock (slow: busy polling)",
    )
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
