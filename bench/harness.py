"""Shared by the bot benchmarks: the sandbox in this process, `lstmbot run` in another.

The bot runs exactly as in production (its own process, polling over HTTP); this process plays
Telegram and the users, and measures from a user's message to the bot's reply.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.testing import SandboxServer

ROOT = Path(__file__).resolve().parent.parent
Json = dict[str, object]
# cgroup.procs files (os.pathsep-separated) the bot process must join before it starts.
CGROUP_PROCS_ENV = "BENCH_BOT_CGROUP_PROCS"


@dataclass
class BotProcess:
    """The bot under test and where its output goes."""

    proc: subprocess.Popen[bytes]
    log: Path
    database_url: str
    latencies: list[float] = field(default_factory=list)
    started_kb: int = 0  # the bot's VmRSS when it first polled (start-up done)
    peak_kb: int = 0  # the bot's VmHWM (peak resident set), last read just before it was stopped
    tree_peak_kb: int = 0  # the bot and its child processes together, sampled every 0.1 s
    spawned_at: float = 0.0  # time.monotonic() just before the process was started


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summary(values: list[float]) -> str:
    """p50 / p95 / max in milliseconds."""
    if not values:
        return "no data"
    return (
        f"p50 {percentile(values, 50) * 1000:.0f} ms, p95 {percentile(values, 95) * 1000:.0f} ms, "
        f"max {max(values) * 1000:.0f} ms, mean {statistics.fmean(values) * 1000:.0f} ms"
    )


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) used so far by process `pid` and by its main thread, where the
    bot's event loop runs (Linux /proc): a machine's spare capacity shows in these, not in wall time."""

    def used(stat: Path) -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    return used(Path(f"/proc/{pid}/stat")), used(Path(f"/proc/{pid}/task/{pid}/stat"))


def status_kb(pid: int, name: str) -> int:
    """A figure in kB from /proc/<pid>/status (VmRSS, VmHWM, RssAnon, ...); 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """The process ids of every child, grandchild, ... of `pid` (Linux /proc)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


async def watch_memory(bot: BotProcess, every: float = 0.1) -> None:
    """Keep `bot.peak_kb` and `bot.tree_peak_kb` up to date until cancelled: a child process
    (the book's tokenizer) counts against a memory limit too, though not in the bot's VmHWM."""
    pid = bot.proc.pid
    while True:
        bot.peak_kb = max(bot.peak_kb, status_kb(pid, "VmHWM"))
        tree = sum(status_kb(p, "VmRSS") for p in [pid, *descendants(pid)])
        bot.tree_peak_kb = max(bot.tree_peak_kb, tree)
        await asyncio.sleep(every)


@asynccontextmanager
async def running_bot(
    sb: SandboxServer,
    *,
    database_url: str | None = None,
    env: dict[str, str] | None = None,
    start_timeout: float = 60.0,
) -> AsyncIterator[BotProcess]:
    """Migrate a database, start `lstmbot run` against the sandbox, stop it with SIGTERM at the end.

    `start_timeout`: seconds for the bot's first poll (long runs on a shared machine that may be
    paused with SIGSTOP pass more)."""
    from migrations import upgrade

    tmp = Path(tempfile.mkdtemp(prefix="lstmbot-bench-"))
    url = database_url or f"sqlite+aiosqlite:///{tmp / 'bench.sqlite3'}"
    await asyncio.to_thread(upgrade, url)
    log = tmp / "bot.log"
    full_env = {
        **os.environ,
        "TELEGRAM_TOKEN": sb.token,
        "TELEGRAM_API_BASE_URL": sb.base_url,
        "DATABASE_URL": url,
        **(env or {}),
    }
    command = [sys.executable, "-m", "cli", "run"]
    if os.environ.get(CGROUP_PROCS_ENV):
        # bench/smallbox.py: the bot (alone, not this process) starts inside the given cgroups. A
        # shell writes its own pid into each cgroup.procs, then becomes the bot by exec, so every
        # byte the bot ever allocates is charged there.
        joins = os.environ[CGROUP_PROCS_ENV].split(os.pathsep)
        script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"'
        command = ["sh", "-c", script, "sh", *joins, "--", *command]
    spawned_at = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 - starting it is instant; we never wait on it here
            command, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
    bot = BotProcess(proc, log, url, spawned_at=spawned_at)
    watcher = asyncio.create_task(watch_memory(bot), name="bot-memory")
    try:
        await sb.wait_until(lambda: sb.calls("getUpdates"), timeout=start_timeout, what="the bot to start")
        bot.started_kb = status_kb(proc.pid, "VmRSS")
        yield bot
    finally:
        watcher.cancel()
        bot.peak_kb = max(bot.peak_kb, status_kb(proc.pid, "VmHWM"))
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()


class NotASample(Exception):
    """The bot answered a seed with something other than a sample (a refusal, a notice)."""


async def ask(
    sb: SandboxServer, user: Json, text: str, *, timeout: float = 60.0, sample: bool = True
) -> float:
    """Send `text` as `user` in their private chat; seconds until the bot's reply arrives.

    Raises TimeoutError when nothing comes, and with `sample` (a seed) NotASample when the
    reply is not a sample (one carries the rating buttons).
    """
    chat_id = int(user["id"])  # type: ignore[call-overload]
    before = len(sb.bot_messages(chat_id))
    started = time.monotonic()
    sb.send(user, chat_id, text)
    replies = await sb.wait_for_bot_messages(chat_id, after=before, timeout=timeout)
    took = time.monotonic() - started
    buttons = [json.dumps(reply.get("reply_markup") or {}, ensure_ascii=False) for reply in replies]
    if sample and not any("👍" in row for row in buttons):
        raise NotASample(str(replies[0].get("text", ""))[:80])
    return took
