"""The event loop's CPU a reply, this checkout against an earlier commit, in the same run.

    python -m bench.per_reply [--against 92f7305] [--runs 2] [--rounds 2] [--burst 200]

Machines here differ by 2-3x from session to session, and a shared one drifts within a
session, so a per-reply figure means little alone. This runs both versions of the bot
alternately on this machine (the earlier one from a temporary git worktree, with this
checkout's compiled kernel and caches) and prints each run and the ratio of their medians.

Each run starts `lstmbot run` against the sandbox, sends a burst of `--burst` seeds from new
users (newcomers: their user and chat rows are written), then the same users again `--rounds`
times (returning users), and reads the CPU time of the bot's event-loop thread over each burst
(/proc). The default baseline, 92f7305, is the code before issue 26's per-reply work.

Measured: docs/deploy.md, "A small machine".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What a worktree lacks that the bot needs: ignored build outputs and caches of this checkout.
CARRIED = ("core/_qkernel*.so", "data")


async def measure(burst: int, rounds: int) -> None:
    """One run of the code in the current directory; prints "newcomers ms; returning ms ...".
    Imports from the current directory, so an earlier commit's own harness drives its bot."""
    sys.path.insert(0, os.getcwd())
    from bench.harness import ask, cpu_seconds, running_bot
    from sandbox.testing import SandboxServer

    async def one_burst(sb: SandboxServer, people: list[dict[str, object]], pid: int) -> float:
        before = cpu_seconds(pid)[1]
        results = await asyncio.gather(
            *(ask(sb, user, "the will to truth", timeout=60) for user in people), return_exceptions=True
        )
        failed = [r for r in results if not isinstance(r, float)]
        if failed:
            raise RuntimeError(f"{len(failed)} seeds unanswered: {failed[0]!r}")
        return (cpu_seconds(pid)[1] - before) / len(people) * 1000

    async with SandboxServer() as sb:
        env = {"RATE_LIMIT_PER_MINUTE": "1000", "LOG_LEVEL": "WARNING"}
        async with running_bot(sb, env=env) as bot:
            await ask(sb, sb.user("warmup"), "warm up")
            people = [sb.user(f"B{i}") for i in range(burst)]
            figures = [await one_burst(sb, people, bot.proc.pid) for _ in range(rounds + 1)]
    print(" ".join(f"{ms:.2f}" for ms in figures), flush=True)


def worktree(commit: str) -> Path:
    """A detached worktree of `commit` with this checkout's carried files."""
    where = Path(tempfile.mkdtemp(prefix="lstmbot-baseline-")) / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), commit], check=True)
    for pattern in CARRIED:
        for path in ROOT.glob(pattern):
            target = where / path.relative_to(ROOT)
            if path.is_dir():
                target.unlink(missing_ok=True) if target.is_symlink() else shutil.rmtree(target, True)
                target.symlink_to(path)
            else:
                shutil.copy2(path, target)
    return where


def cpu_model() -> str:
    """The CPU's model name (Linux), for the record beside the figures."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "(unknown)"


def run_side(where: Path, burst: int, rounds: int) -> tuple[float, list[float]]:
    """One run of the bot in `where`: (newcomers' ms, returning users' ms per round)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--measure", "--burst", str(burst)]
    command += ["--rounds", str(rounds)]
    out = subprocess.run(command, cwd=where, check=True, capture_output=True, text=True).stdout
    figures = [float(x) for x in out.strip().splitlines()[-1].split()]
    return figures[0], figures[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="92f7305", help="the baseline commit")
    parser.add_argument("--runs", type=int, default=2, help="runs of each version, alternating")
    parser.add_argument("--rounds", type=int, default=2, help="returning-user bursts a run")
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        asyncio.run(measure(args.burst, args.rounds))
        return
    base = worktree(args.against)
    sides = {"baseline": base, "this checkout": ROOT}
    newcomers: dict[str, list[float]] = {name: [] for name in sides}
    returning: dict[str, list[float]] = {name: [] for name in sides}
    from bench.leaderboard import blas_settings

    print("\n".join([f"cpu model: {cpu_model()}", *blas_settings()]))
    print(f"event-loop CPU ms a reply, bursts of {args.burst} seeds; baseline {args.against}")
    try:
        for run in range(1, args.runs + 1):
            for name, where in sides.items():
                first, again = run_side(where, args.burst, args.rounds)
                newcomers[name].append(first)
                returning[name].extend(again)
                shown = " ".join(f"{ms:.1f}" for ms in again)
                print(f"  run {run}, {name:13}: newcomers {first:.1f}, returning users {shown}", flush=True)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False)
    for label, figures in (("newcomers", newcomers), ("returning users", returning)):
        old, new = (statistics.median(figures[name]) for name in sides)
        print(f"{label}: median {new:.1f} ms a reply against {old:.1f} ms: {new / old:.2f}x")
    print("target (issue 26): 7 ms, from 13.4 ms when it was filed: 0.52x of its code on one machine")


if __name__ == "__main__":
    main()
