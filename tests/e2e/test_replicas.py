"""Two `lstmbot run` replicas behind HAProxy on one PostgreSQL; one is killed mid-load.

The sandbox posts updates to HAProxy like Telegram (retrying until a 2xx); `kill -9` takes one
replica down while updates are in flight on it, and it is started again. Every seed must still
get exactly one reply, and every press exactly one rating.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.replica_load import Load, check, run_load
from bench.rig import running_rig
from bot.db.scratch import temporary_database
from sandbox.testing import SandboxServer
from tests.conftest import BundleFactory

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")
USERS, PER_USER = 16, 4

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="replicas share PostgreSQL: set TEST_POSTGRES_URL")


async def _wait(sb: SandboxServer, probe: Callable[[], object], timeout: float = 60) -> None:
    await sb.wait_until(probe, timeout=timeout, what="the moment to kill a replica")


async def test_kill_one_replica_mid_load_every_update_answered_once(
    make_bundle: BundleFactory, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copytree(make_bundle(window=20), models / "tiny-char")
    env = {
        "MODEL_DIR": str(models),
        "DEFAULT_MODEL": "tiny-char",
        "RATE_LIMIT_PER_MINUTE": "1000",
        # A killed replica's stored-but-unsent sample is taken over after 8 s.
        "SEND_CLAIM_S": "8",
        "OUTBOX_INTERVAL_S": "1",
        "LOG_LEVEL": os.environ.get("REPLICAS_LOG_LEVEL", "INFO"),
    }
    assert POSTGRES_URL
    async with (
        temporary_database(POSTGRES_URL, tag="replicas") as url,
        SandboxServer() as sb,
        running_rig(sb, url, replicas=2, env=env) as rig,
    ):
        users = [sb.user(f"U{i}") for i in range(USERS)]
        load = Load()
        total = USERS * PER_USER
        task = asyncio.create_task(run_load(sb, users, PER_USER, load, timeout=25))
        try:
            victim = rig.replicas[0]
            webhook = sb.sandbox.webhook
            # kill -9 while updates are in flight (some of them on the victim), then start it again.
            await _wait(sb, lambda: load.done >= total // 3 and webhook._in_flight)
            rig.kill(victim)
            await asyncio.sleep(1.0)
            await rig.restart(victim)
            await asyncio.wait_for(task, 90)
        except BaseException:
            task.cancel()
            print(rig.logs())
            raise
        # Anything late (an outbox resend, a duplicate) would arrive within a few seconds.
        await asyncio.sleep(4)
        result = await check(sb, url, users, PER_USER, load)
        print(result, "deliveries:", webhook.log, "logs in", rig.folder)
        assert victim.starts == 2
        # Exactly once, except replies whose send the kill cut off mid-way: those samples are
        # marked uncertain and never sent twice (docs/reliability.md: at most one message).
        # Only sends in flight on the victim at the kill can be among them: a handful at most.
        seen = {chat: [m["text"][:50] for m in sb.bot_messages(chat)] for chat in result.chats_off}
        print("seen", seen, "odd", load.odd)
        # Never twice, whatever happens: no chat got more replies than seeds, counters = votes.
        assert max([0, *result.chats_off.values()]) <= 0, (result, seen, load.odd)
        assert result.ratings == result.up_votes == result.presses
        # No refusal either: each user waits for a reply before the next seed. (Issue 17: the
        # redelivery of an answered update held the user's slot while it was recognised, and
        # the user's next seed, arriving meanwhile, was refused "one at a time" and lost.)
        assert not load.odd, (result, load.odd)
        assert result.never_twice, (result, seen, load.odd, rig.logs())
        assert result.unanswered <= 4
        assert result.seeds == total
        # The restarted replica serves again: it says who it is on /metrics.
        assert 'lstmbot_replica_info{replica="r1"} 1.0' in await rig.metrics(victim)
