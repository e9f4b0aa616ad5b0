"""The bot under load, through the sandbox, with the default model.

    python -m bench.bot [--users 100] [--rate 10] [--seconds 60] [--burst 200]

1. Steady load: `--users` simulated users send `--rate` seeds per second in total for
   `--seconds`; every request must be answered; p50 and p95 from update to reply are printed
   (target: p95 <= 500 ms).
2. Mixed load: the same, but `--long-share` of the users (10%) first set /length 2000, so about
   one request in ten asks for 2000 characters; the short requests' p95 must stay within 1.2x of
   the all-short run (continuous batching: a short reply never waits for a long one).
3. Burst: `--burst` users send a seed at the same moment; all must be answered within 10 s,
   then every one of them rates their sample; then the same users send a seed at once again
   (returning users: most of a deployment's replies go to people it knows, whose update is
   answered without a write for the user); samples and ratings are counted in the database.

At the end: the bot's peak resident memory (VmHWM, target <= 300 MB: a 512 MB VPS, see
bench/memory.py and bench/smallbox.py) and that of the bot with its child processes.

The bot is `lstmbot run` in its own process (SQLite, default settings, rate limit raised so the
simulated users are not refused); this process is Telegram and the users.

Both bursts also print the bot's CPU seconds (whole process, and its event-loop thread, where
every handler runs; target: 7 ms of the event loop a reply): wall time alone hides spare
capacity, because the bot's Telegram rate limiter allows ~30 messages a second, so 200 replies
need at least ~6.7 s on any machine.

A slower machine, emulated: the benchmark and the bot in a cgroup with a CPU quota (cgroup v1,
as root), e.g. 1.45 cores, ~1.4x less than this 2-core machine, about the slowest seen here:
    mkdir /sys/fs/cgroup/cpu/slow; cd /sys/fs/cgroup/cpu/slow
    echo 10000 > cpu.cfs_period_us; echo 14500 > cpu.cfs_quota_us; echo 262144 > cpu.shares
    sh -c 'echo $$ > /sys/fs/cgroup/cpu/slow/tasks; exec python -m bench.bot'

Measured (2026-11-26 07:13-08:00, 2-core AMD EPYC Zen 4, other jobs stopped, defaults):
  whole machine:   steady p95 206 ms; mixed 0.82x; burst 7.5 s (replies sent from 0.5 s to
                   7.5 s; the bot used 6.9 CPU-s, its event loop 2.8 s: 13.9 ms a reply)
  1.45-core quota: steady p95 168 / 273 ms; mixed 1.00x / 0.60x; burst 7.5 / 7.3 s (two runs)
  1-core quota:    (half this machine, beyond the slowest seen here, ~1.4x) burst 6.9 s; steady
                   p95 963 ms, FAIL: the Chinese book, tokenized in the background just after
                   start, takes the CPU the bot lacks; with 30 s idle before the steady load
                   (a temporary edit) p95 234 ms, mixed 1.26x
What moved them (same machine, alternating runs):
  - SQLite: one thread round trip per statement (bot/db/sqlite_driver.py), not aiosqlite's
    four: event-loop CPU 23.1 / 17.2 -> 14.0 / 13.7 ms a reply in the burst; under a 1-core
    quota the burst took 9.2 / 13.6 s before, 8.8 / 9.1 s after.
  - The Chinese book tokenized in a child process (bot/novelty.py): under the 1.45-core quota
    the steady p95 was 2011 ms with jieba in a thread of the bot (the first seconds after
    start), 168 / 273 ms after.
  - Ordered SQLite writers (bot/db/write_turns.py): the burst's first reply had left at 3.8-6.6 s,
    queued behind all 200 newcomers' registrations; now at ~0.5 s.
  - The per-reply path (issue 26, 2026-12-06): one SELECT before the writes, no BEGIN/COMMIT
    for it, statements built once on tables, BEGIN handed to the driver, a newcomer's rows
    inserted first: event-loop CPU 0.55x (returning users) and 0.59x (newcomers) of 92f7305's
    in alternating runs (`python -m bench.per_reply`; figures in docs/deploy.md).
  - Trips (2026-12-07, bot/db/trip.py): each of a reply's four database units in one trip to
    SQLite's thread, statements compiled once and run by sqlite3 (no session, pool checkout or
    greenlet per unit): 0.29x (newcomers) and 0.31x (returning users) of 92f7305's event-loop
    CPU; in the 1-CPU / 512 MB box 7.0 / 6.1 ms a reply (18.4 / 15.4 ms for the code at the
    session's start, same machine), the burst 7.6 s instead of 9.8 s.
  - aiohttp for Bot API calls (2026-12-07, bot/telegram_http.py): a send 0.5-0.6 ms of CPU
    instead of 3.5-4.6 ms through httpx; 0.20x / 0.22x of 92f7305's event-loop CPU; in the box
    4.3 / 5.3 ms a reply, the burst 7.2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bench.harness import Json, NotASample, ask, cpu_seconds, percentile, running_bot, summary
from bot.db.database import Database
from bot.db.models import Rating, StoredSample
from bot.db.scratch import create_postgres_database, drop_postgres_database
from sandbox.testing import SandboxServer

SEEDS = [
    "the will to truth",
    "what then?",
    "supposing that truth is a woman",
    "morality is",
    "the free spirit",
]


async def steady(
    sb: SandboxServer, users: int, rate: float, seconds: float, *, long_share: float = 0.0, tag: str = "S"
) -> tuple[list[float], list[float], int]:
    """Poisson-ish arrivals at `rate` per second spread over `users`, `long_share` of whom asked
    for 2000 characters; returns the short and the long latencies and the failures."""
    people = [sb.user(f"{tag}{i}") for i in range(users)]
    long_ids = {int(u["id"]) for u in people[: round(users * long_share)]}  # type: ignore[call-overload]
    for user in people[: len(long_ids)]:
        await ask(sb, user, "/length 2000", sample=False)
    busy: set[int] = set()
    short: list[float] = []
    long: list[float] = []
    failures = 0
    tasks: list[asyncio.Task[None]] = []
    rng = random.Random(1)

    async def one(user: dict[str, object]) -> None:
        nonlocal failures
        key = int(user["id"])  # type: ignore[call-overload]
        try:
            took = await ask(sb, user, rng.choice(SEEDS), timeout=30)
            (long if key in long_ids else short).append(took)
        except TimeoutError:
            failures += 1
            return  # still busy: its late sample must not be taken for the next seed's answer
        except NotASample:
            failures += 1
        busy.discard(key)

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        idle = [u for u in people if int(u["id"]) not in busy]  # type: ignore[call-overload]
        if idle:
            user = rng.choice(idle)
            busy.add(int(user["id"]))  # type: ignore[call-overload]
            tasks.append(asyncio.create_task(one(user)))
        await asyncio.sleep(rng.expovariate(rate))
    await asyncio.gather(*tasks)
    return short, long, failures


async def burst(
    sb: SandboxServer, people: list[Json], bot_pid: int, *, label: str, rate: bool
) -> tuple[float, list[float], int, float]:
    """`people` send a seed at once (with `rate`, each then rates the sample they got); returns
    the time until all were answered, latencies, failures and the event loop's CPU ms a reply."""
    count = len(people)
    calls_before = len(sb.calls())
    cpu_before = cpu_seconds(bot_pid)
    started = time.monotonic()
    results = await asyncio.gather(
        *(ask(sb, u, "the will to truth", timeout=60) for u in people), return_exceptions=True
    )
    took = time.monotonic() - started
    cpu, loop_cpu = (after - before for after, before in zip(cpu_seconds(bot_pid), cpu_before, strict=True))
    print(
        f"  bot CPU during the burst of {label}: {cpu:.1f} s in {took:.1f} s on {os.cpu_count()} cores; "
        f"its event-loop thread {loop_cpu:.1f} s ({loop_cpu / count * 1000:.1f} ms a reply)"
    )

    # Where the time went: the bot's calls to the (sandboxed) Bot API during the burst.
    calls = sb.calls()[calls_before:]
    per_method: dict[str, int] = {}
    for call in calls:
        per_method[call.method] = per_method.get(call.method, 0) + 1
    sends = sorted(c.at for c in calls if c.method.lower() == "sendmessage")
    if sends:
        print(
            f"  burst Bot API calls: {dict(sorted(per_method.items()))}; sendMessage from "
            f"{sends[0] - calls[0].at:.1f} s to {sends[-1] - calls[0].at:.1f} s after the first call"
        )
    latencies = [r for r in results if isinstance(r, float)]
    if rate:
        for user in people:  # everyone rates the sample they got
            (sample,) = sb.bot_messages(int(user["id"]))  # type: ignore[call-overload]
            sb.press(user, sample, button="👍")
        await sb.wait_until(lambda: all(q["answered"] for q in sb.answers().values()), timeout=60)
        await settled(sb)  # the counts under the samples are redrawn after the answers
    return took, latencies, count - len(latencies), loop_cpu / count * 1000


async def settled(sb: SandboxServer, quiet_s: float = 1.0) -> None:
    """Wait until the bot has made no Bot API call but polling for `quiet_s` seconds."""

    def work_calls() -> int:
        return sum(1 for call in sb.calls() if call.method != "getUpdates")

    seen, since = work_calls(), time.monotonic()
    while time.monotonic() - since < quiet_s:
        await asyncio.sleep(0.1)
        if (now := work_calls()) != seen:
            seen, since = now, time.monotonic()


async def generation_latency(port: int) -> str:
    """The bot's own queue-to-done generation percentiles, from its /metrics."""
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        body = await resp.text()
    values = {
        line.split('quantile="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith("lstmbot_generation_latency_seconds{")
    }
    return ", ".join(f"p{float(q) * 100:g} {v * 1000:.0f} ms" for q, v in values.items())


async def count_rows(url: str) -> tuple[int, int]:
    """Samples and ratings in the bot's database."""
    db = Database.from_url(url)

    async def work(session: AsyncSession) -> tuple[int, int]:
        samples = await session.scalar(select(func.count()).select_from(StoredSample))
        ratings = await session.scalar(select(func.count()).select_from(Rating))
        return int(samples or 0), int(ratings or 0)

    try:
        return await db.run(work, write=False)
    finally:
        await db.dispose()


async def main_async(args: argparse.Namespace) -> None:
    """Run the scenarios against one bot process (on a scratch PostgreSQL database with --postgres)."""
    database_url = await create_postgres_database(args.postgres, tag="bench_bot") if args.postgres else None
    try:
        await run_scenarios(args, database_url)
    finally:
        if database_url is not None:
            await drop_postgres_database(database_url)


async def run_scenarios(args: argparse.Namespace, database_url: str | None) -> None:
    """Steady, mixed and burst load, then the database counts."""
    async with SandboxServer() as sb:
        env = {
            "RATE_LIMIT_PER_MINUTE": "1000",
            "LOG_LEVEL": "WARNING",
            "METRICS_PORT": str(args.metrics_port),
        }
        async with running_bot(sb, database_url=database_url, env=env) as bot:
            await ask(sb, sb.user("warmup"), "warm up")
            latencies, _, failures = await steady(sb, args.users, args.rate, args.seconds)
            inside = await generation_latency(args.metrics_port)
            mixed_short, mixed_long, mixed_failures = await steady(
                sb, args.users, args.rate, args.seconds, long_share=args.long_share, tag="M"
            )
            people = [sb.user(f"B{i}") for i in range(args.burst)]
            took, burst_latencies, burst_failures, loop_ms = await burst(
                sb, people, bot.proc.pid, label="newcomers", rate=True
            )
            # The same people again: most of a deployment's replies go to users it knows.
            again_took, again_latencies, again_failures, again_loop_ms = await burst(
                sb, people, bot.proc.pid, label="returning users", rate=False
            )
            samples, ratings = await count_rows(bot.database_url)
    expected_samples = 1 + len(latencies) + len(mixed_short) + len(mixed_long) + len(burst_latencies)
    expected_samples += len(again_latencies)
    backend = "PostgreSQL" if database_url else "SQLite"
    print(f"Bot under load (default model, {backend}, one `lstmbot run` process, sandbox over loopback)")
    print(
        f"steady: {args.users} users, {args.rate:g} seeds/s for {args.seconds:g} s: "
        f"{len(latencies)} answered, {failures} unanswered"
    )
    print(f"  update -> reply: {summary(latencies)}  (target p95 <= 500 ms)")
    print(f"  of which queue + generation inside the bot: {inside}")
    ratio = percentile(mixed_short, 95) / percentile(latencies, 95)
    print(
        f"mixed: {args.long_share:.0%} of users at 2000 chars: {len(mixed_short)} short + "
        f"{len(mixed_long)} long answered, {mixed_failures} unanswered"
    )
    print(f"  short update -> reply: {summary(mixed_short)}")
    print(f"  long update -> reply: {summary(mixed_long)}")
    print(f"  short p95 mixed / all-short: {ratio:.2f}x (target <= 1.2x)")
    print(
        f"burst: {args.burst} seeds at once: all answered in {took:.1f} s (target <= 10 s), "
        f"{burst_failures} unanswered; {summary(burst_latencies)}"
    )
    print(
        f"  the same {args.burst} again (returning users): all answered in {again_took:.1f} s, "
        f"{again_failures} unanswered; {summary(again_latencies)}"
    )
    print(
        f"  event-loop CPU a reply: {loop_ms:.1f} ms (newcomers), {again_loop_ms:.1f} ms (returning users) "
        "(target <= 7 ms)"
    )
    print(
        f"database afterwards: {samples} samples (expected {expected_samples}), "
        f"{ratings} ratings (expected {args.burst})"
    )
    print(
        f"memory: the bot's peak RSS (VmHWM) {bot.peak_kb / 1024:.0f} MB (target <= 300 MB), "
        f"{bot.started_kb / 1024:.0f} MB when it first polled; with its child processes, sampled "
        f"every 0.1 s: {bot.tree_peak_kb / 1024:.0f} MB"
    )
    if args.json:
        figures = {
            "steady_p95_ms": percentile(latencies, 95) * 1000,
            "steady_unanswered": failures,
            "mixed_ratio": ratio,
            "burst_s": took,
            "burst_count": args.burst,
            "burst_unanswered": burst_failures,
            "loop_ms_newcomers": loop_ms,
            "loop_ms_returning": again_loop_ms,
            "peak_rss_mb": bot.peak_kb / 1024,
            "started_rss_mb": bot.started_kb / 1024,
            "tree_peak_mb": bot.tree_peak_kb / 1024,
        }
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")  # noqa: ASYNC240 - once, at the end


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0, help="seeds per second, all users together")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--long-share", type=float, default=0.1, help="users asking for 2000 chars")
    parser.add_argument("--metrics-port", type=int, default=9464, help="where the bot serves /metrics")
    parser.add_argument("--json", metavar="PATH", help="also write the main figures there (bench.smallbox)")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        nargs="?",
        const="postgresql+asyncpg://postgres@127.0.0.1:5432/test",
        help="store in a scratch database on this PostgreSQL server instead of SQLite",
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
