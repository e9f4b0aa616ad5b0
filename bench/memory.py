"""Memory of the serving process: resident set after each thing it loads, and its peak under load.

    python -m bench.memory [--no-stages] [--no-bot] [-- bench.bot options]

1. Stages: this process loads what `lstmbot run` loads, one thing at a time (imports, each model
   bundle, its generator, the kernel's first call, jieba's dictionary, each novelty index, a
   first generation per model, the leaderboard chart), and prints the resident set (VmRSS) after
   each, its anonymous part, the peak so far (VmHWM), the peak of any child process during the
   stage, and the top-level packages the stage imported. Run as `python -m`, so nothing of the
   project is imported before the first stage.
2. The bot: `python -m bench.bot` (steady, mixed and burst load on `lstmbot run` in its own
   process), then its peak RSS (VmHWM, read just before it is stopped) and the peak of the bot
   with its child processes (sampled every 0.1 s). Target: the bot's peak <= 300 MB, so that it
   lives on a 512 MB VPS (bench/smallbox.py runs it under such a memory limit).

Measured (2026-12-06, 2-core Intel Xeon with AMX, shared with other jobs, the training job
paused; MB = MiB of VmRSS after each stage; `python -m bench.memory --no-bot`, after: warm cache,
[cold] = `--cold`, an empty cache folder as at the very first start):

  stage                               before   after   what changed
  python, numpy, h5py                     49      50
  import core.generator, core.novelty    218      55   numba + llvmlite (+ scipy through numba),
                                                       165 MB, not imported: C entry points
                                                       (core/qpython.c), numba only as fallback
  telegram, sqlalchemy, pydantic,        269     106
    aiohttp, prometheus
  bot.app, cli (the rest)                306     115   matplotlib + PIL (28 MB) on the first chart
  load both bundles                      340     121   float32 weights left on disk (-28 MB)
  both Generators                        452     124   no float32 BLAS copies (made on a big
                                      (peak 488) (peak 186; batch only), the word model's 31 MB
                                                [240])  token table mapped from the cache, and
                                                       malloc_trim after packing (-56 MB)
  kernel warm-up, jieba dictionary       500     188   jieba's dictionary: +63 MB (a 498,000-key
                                                       dict: 14 MB of table, 37 MB of key strings)
  both novelty indexes                   532     209   books' ids mapped from the cache, two malloc
                                                       arenas; the Chinese book needs no child
                                                       (cold: one child, 139 MB peak, was 212)
  a first generation per model           533     215
  the leaderboard chart                  535     250
  bot under `python -m bench.bot`:
    peak RSS (VmHWM)                     581     226   [244 in a 512 MB cgroup, cold cache]
    RSS when it first polled               -     209
    bot + children (sampled)             785     226   [355 cold: the tokenizing child at start]

The bench.bot figures of those runs: before, steady p95 230 ms, burst 7.4 s; after, 234 ms and
6.5 s (same machine, quieter moments; the machine was shared, so p95 moved 190-600 ms between
runs of the same code). Per step, C entry points against numba's dispatch (alternating runs):
1 / 8 / 32 rows 124-150 / 191 / 319-327 us after, 127-134 / 186-190 / 292-307 us before (ctypes,
tried first, cost 199 / 287 / 437 us).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE_DIR = Path("data/cache")  # bot/settings.py's default, relative to where the bot runs
DEFAULT_MODEL = "nietzsche-char"
# Every bundle the bot loads from models/ by default, in its order (the default first).
MODELS = [
    DEFAULT_MODEL,
    *sorted(
        p.name
        for p in (ROOT / "models").iterdir()
        if (p / "config.json").is_file() and p.name != DEFAULT_MODEL
    ),
]


def _status_kb(pid: int | str, name: str) -> int:
    """A figure in kB from /proc/<pid>/status; 0 if absent. (bench.harness has the same reader,
    but importing it loads the sandbox and aiohttp, which the stages here must not include.)"""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class ChildWatch:
    """Samples the resident set of this process's children (the book tokenizer) every 20 ms."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="child-watch")

    def start(self) -> None:
        """Begin sampling in a daemon thread."""
        self._thread.start()

    def take(self) -> int:
        """The peak since the last call, in kB."""
        peak, self.peak_kb = self.peak_kb, 0
        return peak

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.02):
            try:  # a child is listed under the thread that started it
                children = {
                    c
                    for t in Path(f"/proc/{me}/task").iterdir()
                    for c in (t / "children").read_text().split()
                }
            except OSError:
                continue
            total = sum(_status_kb(c, "VmRSS") for c in children)
            self.peak_kb = max(self.peak_kb, total)


def mb(kb: int) -> str:
    """kB as whole MiB."""
    return f"{kb / 1024:.0f}"


def _top_modules() -> set[str]:
    return {name.split(".")[0] for name in sys.modules}


def stages(cache_dir: Path | None) -> list[tuple[str, Callable[[dict[str, Any]], None]]]:
    """What `lstmbot run` loads, in the order it does, as small steps on a shared namespace."""

    def imp(*names: str) -> Callable[[dict[str, Any]], None]:
        def run(ns: dict[str, Any]) -> None:
            for name in names:
                __import__(name)

        return run

    def load(name: str) -> Callable[[dict[str, Any]], None]:
        def run(ns: dict[str, Any]) -> None:
            from core.bundle import load_bundle

            ns.setdefault("bundles", {})[name] = load_bundle(ROOT / "models" / name, weights="disk")

        return run

    def generator(name: str) -> Callable[[dict[str, Any]], None]:
        def run(ns: dict[str, Any]) -> None:
            from core.generator import Generator

            ns.setdefault("generators", {})[name] = Generator(ns["bundles"][name], cache_dir=cache_dir)

        return run

    def trim(ns: dict[str, Any]) -> None:
        from core.memory import release_free_memory

        release_free_memory()

    def warm(ns: dict[str, Any]) -> None:
        for g in ns["generators"].values():
            g.warm()

    def segmenter_init(ns: dict[str, Any]) -> None:
        for g in ns["generators"].values():  # a word model's tokenizer loads the segmenter's dictionary
            g.tokenizer.encode_counted("warm up 预热")
        trim(ns)  # as GenerationService's warm-up does

    def novelty(name: str) -> Callable[[dict[str, Any]], None]:
        def run(ns: dict[str, Any]) -> None:
            from bot.novelty import NoveltyService

            service = NoveltyService({name: ns["bundles"][name]}, cache_dir)

            async def build() -> None:
                service.start()
                await service.wait_ready()

            asyncio.run(build())
            if name not in service.indexes:
                raise RuntimeError(f"no novelty index for {name}")
            ns.setdefault("novelty", []).append(service)

        return run

    def first_generation(name: str) -> Callable[[dict[str, Any]], None]:
        def run(ns: dict[str, Any]) -> None:
            from core.generator import Request

            generator = ns["generators"][name]
            seed = str((generator.bundle.meta.get("seeds") or ["the"])[0])
            generator.generate_one(Request(seed, length=400, rng=1))

        return run

    def chart(ns: dict[str, Any]) -> None:
        from bot.chart import TemperatureVotes, leaderboard_png
        from bot.ranking import ArmStrength

        board = [
            ArmStrength("a @0.5", 0.5, 0.2, 0.8, 30, 0.1),
            ArmStrength("a @1.0", -0.5, -0.8, -0.2, 30, 0.2),
        ]
        leaderboard_png(board, [TemperatureVotes(0.5, 3, 1)], title="memory")

    def collect(ns: dict[str, Any]) -> None:
        gc.collect()

    def arenas(ns: dict[str, Any]) -> None:
        from core.memory import limit_arenas

        limit_arenas(2)

    return [
        ("two malloc arenas (as lstmbot run)", arenas),
        ("import numpy", imp("numpy")),
        ("import h5py", imp("h5py")),
        ("import core.bundle, core.book", imp("core.bundle", "core.book")),
        ("import core.generator", imp("core.generator", "core.batching")),
        ("import core.novelty", imp("core.novelty")),
        ("import telegram, telegram.ext", imp("telegram", "telegram.ext")),
        ("import sqlalchemy, aiosqlite", imp("sqlalchemy.ext.asyncio", "aiosqlite")),
        ("import pydantic_settings", imp("pydantic", "pydantic_settings")),
        ("import aiohttp, prometheus_client", imp("aiohttp", "prometheus_client")),
        ("import bot.app, cli (the rest)", imp("bot.app", "cli", "cli.run")),
        *((f"load bundle {name}", load(name)) for name in MODELS),
        *((f"Generator({name})", generator(name)) for name in MODELS),
        ("malloc_trim (as GenerationService)", trim),
        ("kernel warm-up (all)", warm),
        ("segmenter dictionary (rjieba) + malloc_trim", segmenter_init),
        *((f"novelty index {name}", novelty(name)) for name in MODELS),
        *((f"first generation {name}", first_generation(name)) for name in MODELS),
        ("leaderboard chart", chart),
        ("gc.collect()", collect),
    ]


def run_stages(cache_dir: Path | None) -> None:
    """Run every stage in this process and print the table."""
    me = os.getpid()
    watch = ChildWatch()
    watch.start()
    ns: dict[str, Any] = {}
    rows: list[tuple[str, float, int, int, int, int, str]] = []
    before = _status_kb(me, "VmRSS")
    rows.append(
        ("python -m bench.memory", 0.0, before, _status_kb(me, "RssAnon"), _status_kb(me, "VmHWM"), 0, "")
    )
    for name, step in stages(cache_dir):
        modules = _top_modules()
        started = time.perf_counter()
        step(ns)
        took = time.perf_counter() - started
        new = sorted(m for m in _top_modules() - modules if not m.startswith("_"))
        shown = ", ".join(new[:6]) + (f" +{len(new) - 6}" if len(new) > 6 else "")
        rows.append(
            (
                name,
                took,
                _status_kb(me, "VmRSS"),
                _status_kb(me, "RssAnon"),
                _status_kb(me, "VmHWM"),
                watch.take(),
                shown,
            )
        )
    print(f"{'stage':36} {'s':>5} {'RSS':>6} {'+':>5} {'anon':>5} {'peak':>5} {'child':>5}  new packages")
    last = 0
    for name, took, rss, anon, hwm, child, shown in rows:
        child_text = mb(child) if child else ""
        print(
            f"{name:36} {took:5.1f} {mb(rss):>6} {mb(rss - last):>5} {mb(anon):>5} {mb(hwm):>5} "
            f"{child_text:>5}  {shown}"
        )
        last = rss
    print("(MB = MiB; RSS and anon: after the stage; peak: VmHWM so far; child: a child process's peak)")


def run_bot(bot_args: list[str]) -> None:
    """`python -m bench.bot` with `bot_args`; it prints the bot's peak RSS at its end."""
    from bench import bot as bench_bot

    sys.argv = ["bench.bot", *bot_args]
    bench_bot.main()


def main() -> None:
    """Parse arguments; stages, then the bot under load."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--no-stages", action="store_true", help="skip the stage table")
    parser.add_argument("--no-bot", action="store_true", help="skip the bot under bench.bot's load")
    parser.add_argument(
        "--cold", action="store_true", help="stages with an empty cache folder (as the bot's first start)"
    )
    parser.add_argument("bot_args", nargs="*", help="passed to bench.bot (after --)")
    args = parser.parse_args()
    if not args.no_stages:
        cache_dir = Path(tempfile.mkdtemp(prefix="lstmbot-cache-")) if args.cold else ROOT / DEFAULT_CACHE_DIR
        print(f"cache folder: {cache_dir} ({'empty' if not any(cache_dir.glob('*.npy')) else 'filled'})")
        run_stages(cache_dir)
    if not args.no_bot:
        run_bot(args.bot_args)


if __name__ == "__main__":
    main()
