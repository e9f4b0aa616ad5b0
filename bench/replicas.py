"""Scale out: replicas behind HAProxy on one PostgreSQL, one killed mid-load, then a rolling restart.

Runs the same load twice on fresh databases: once with a single replica (the baseline), once
with several, where one replica is `kill -9`ed a third of the way in and started again, and
then every replica is restarted in turn (SIGTERM, start, healthy) while the load goes on.
Afterwards it checks that every seed got exactly one reply, every sample was stored once and
every press counted once, and prints p95 latency beside the baseline's.

    python -m bench.replicas --users 100 --per-user 3 --replicas 3 [--tiny]

--tiny serves a small random-weight model (built with Keras, the dev extra) instead of the
shipped default, so that the numbers measure the replicas rather than the CPU's LSTM speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from bench.harness import summary
from bench.replica_load import SEEDS, Check, Load, check, run_load
from bench.rig import Rig, running_rig
from bot.db.scratch import create_postgres_database, drop_postgres_database
from sandbox.testing import SandboxServer

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def chaos(sb: SandboxServer, rig: Rig, load: Load, total: int) -> list[str]:
    """kill -9 one replica a third of the way in, start it again, then restart all in turn."""
    events: list[str] = []
    await sb.wait_until(lambda: load.done >= total // 3, timeout=600, what="a third of the load")
    victim = rig.replicas[0]
    rig.kill(victim)
    events.append(f"kill -9 {victim.name} at {load.done}/{total} answered")
    await asyncio.sleep(1.0)
    await rig.restart(victim)
    events.append(f"{victim.name} healthy again at {load.done}/{total}")
    for replica in rig.replicas:
        await rig.stop(replica)
        await rig.restart(replica)
        events.append(f"rolling restart: {replica.name} back at {load.done}/{total}")
    return events


async def one_run(
    base: str, args: argparse.Namespace, replicas: int, *, chaos_on: bool
) -> tuple[Check, Load, list[str], float]:
    """One load on a fresh database; returns the check, the load, what happened and the wall time."""
    url = await create_postgres_database(base, tag="replicas")
    env = {
        **args.model_env,
        "RATE_LIMIT_PER_MINUTE": "1000",
        "LOG_LEVEL": "WARNING",
        "SEND_CLAIM_S": "10",
        "OUTBOX_INTERVAL_S": "1",
    }
    try:
        async with SandboxServer() as sb:
            sb.sandbox.webhook.timeout_s = 60.0  # Telegram waits about a minute for an answer
            async with running_rig(sb, url, replicas=replicas, env=env) as rig:
                return await _load(sb, rig, args, chaos_on=chaos_on)
    finally:
        await drop_postgres_database(url)


async def _load(
    sb: SandboxServer, rig: Rig, args: argparse.Namespace, *, chaos_on: bool
) -> tuple[Check, Load, list[str], float]:
    """The users' load (and the faults); then the check."""
    users = [sb.user(f"U{i}") for i in range(args.users)]
    load = Load()
    started = time.monotonic()
    task = asyncio.create_task(run_load(sb, users, args.per_user, load, timeout=180))
    events = await chaos(sb, rig, load, args.users * args.per_user) if chaos_on else []
    await task
    took = time.monotonic() - started
    await asyncio.sleep(6)  # late duplicates (an outbox resend) would show up by now
    return await check(sb, rig.database_url, users, args.per_user, load), load, events, took


def report(title: str, result: Check, load: Load, took: float) -> None:
    print(f"\n{title}: {load.seeds} seeds in {took:.1f} s")
    print(f"  latency: {summary(load.latencies)}")
    print(
        f"  replies {result.replies}/{result.seeds}, samples {result.samples} "
        f"({result.distinct_updates} updates), ratings {result.ratings} = 👍 {result.up_votes} "
        f"= presses {result.presses}, uncertain {result.uncertain}, unanswered {result.unanswered}, "
        f"chats off {result.chats_off or 'none'}"
    )
    for odd in sorted(set(load.odd)):
        print(f"  not a sample ({load.odd.count(odd)}x): {odd!r}")
    print(f"  exactly once: {result.exactly_once}; never twice: {result.never_twice}")


def tiny_model(folder: Path) -> dict[str, str]:
    """A small random-weight character model in `folder`; the env that serves it."""
    import numpy as np

    from core.bundle import save_bundle
    from core.config import ModelConfig
    from core.keras_model import build_model, get_named_weights
    from core.tokenizers import CharTokenizer

    tokenizer = CharTokenizer.fit(" ".join(SEEDS) + " abcdefghijklmnopqrstuvwxyz.,;!?0123456789")
    config = ModelConfig(vocab_size=tokenizer.vocab_size, window=20, embedding_dim=16, lstm_units=(32,))
    model = build_model(config)
    rng = np.random.default_rng(0)
    for weight in model.weights:
        weight.assign(rng.normal(0.0, 0.25, weight.shape).astype("float32"))
    weights = get_named_weights(model, config)
    save_bundle(
        folder / "tiny-char", model=config, tokenizer=tokenizer, weights=weights, meta={"language": "en"}
    )
    return {"MODEL_DIR": str(folder), "DEFAULT_MODEL": "tiny-char"}


async def main_async(args: argparse.Namespace) -> None:
    args.model_env = tiny_model(Path(tempfile.mkdtemp(prefix="lstmbot-tiny-"))) if args.tiny else {}
    base = args.postgres
    single, single_load, _, single_took = await one_run(base, args, 1, chaos_on=False)
    report("1 replica, no faults", single, single_load, single_took)
    multi, multi_load, events, multi_took = await one_run(base, args, args.replicas, chaos_on=True)
    for event in events:
        print(f"  {event}")
    report(f"{args.replicas} replicas, kill -9 + rolling restart", multi, multi_load, multi_took)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--per-user", type=int, default=3, help="seeds each user sends (one at a time)")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="serve a small random model (see above)")
    parser.add_argument("--postgres", default=os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES))
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
