"""Groups, several users at once, duplicates, limits and the queue cap."""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Rating, StoredSample
from tests.e2e.conftest import Harness

pytestmark = pytest.mark.slow


async def count(harness: Harness, model: Any) -> int:
    async def work(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    return int(await harness.query(work))


async def test_group_commands_mentions_replies_and_chatter(harness: Harness) -> None:
    ann, bo, cy = harness.sb.user("Ann"), harness.sb.user("Bo"), harness.sb.user("Cy")
    group = harness.sb.group("club", [ann, bo, cy])
    by_command = await harness.say(ann, "/gen@lstm_test_bot the will to truth", chat=group)
    assert by_command["text"].startswith("the will to truth")
    assert by_command["reply_to_message"]["from"]["id"] == ann["id"]  # quoted in a group
    mention = await harness.say(bo, "@lstm_test_bot what then?", chat=group)
    assert mention["text"].startswith("what then?")
    reply = await harness.say(cy, "and so", chat=group, reply_to=by_command["message_id"])
    assert reply["text"].startswith("and so")
    harness.sb.send(ann, group, "just chatting among ourselves")
    harness.sb.send(bo, group, "/gen@some_other_bot hello")
    assert await harness.quiet(group) == 0
    # Everyone in the group can rate; counts add up.
    for user in (ann, bo, cy):
        await harness.press(user, by_command, button="👍")
    await harness.sb.wait_until(lambda: "👍 3" in str(harness.sb.message(group, by_command["message_id"])))
    top = await harness.say(bo, "/top", chat=group)
    assert "in this chat" in top["text"] and "the will to truth" in top["text"]
    # Each user's own settings apply in the group.
    await harness.say(bo, "/temp 1.2", chat=group)
    assert "T=1.2" in (await harness.say(bo, "/gen truth", chat=group))["text"]
    assert "T=0.5" in (await harness.say(ann, "/gen truth", chat=group))["text"]


async def test_rating_clicks_from_many_users_at_once(harness: Harness) -> None:
    users = [harness.sb.user(f"U{i}") for i in range(12)]
    group = harness.sb.group("crowd", users)
    sample = await harness.say(users[0], "/gen truth", chat=group)
    queries = [harness.sb.press(u, sample, button="👍") for u in users]
    queries += [harness.sb.press(users[1], sample, button="👎")]  # one user also switches
    for query in queries:
        await harness.sb.wait_for_answer(query)
    assert await count(harness, Rating) == 12

    async def votes(session: AsyncSession) -> tuple[int, int]:
        stored = (await session.scalars(select(StoredSample))).one()
        return stored.up_votes, stored.down_votes

    assert await harness.query(votes) == (11, 1)


async def test_a_long_generation_does_not_delay_another_users_command(harness: Harness) -> None:
    slow, quick = harness.sb.user("Slow"), harness.sb.user("Quick")
    await harness.say(slow, "/length 2000")
    harness.sb.send(slow, slow["id"], "a very long one please " * 3)
    started = time.monotonic()
    reply = await harness.say(quick, "/temp 0.7")
    quick_done = time.monotonic() - started
    (long_reply,) = await harness.sb.wait_for_bot_messages(slow["id"], after=1)
    assert "0.7" in reply["text"] and "a very long one" in long_reply["text"]
    assert quick_done < 5


async def test_the_same_update_twice_is_answered_once(harness: Harness) -> None:
    ann = harness.sb.user("Ann")
    first = await harness.say(ann, "truth")
    # The bot confirmed update 1 (Ann's "truth"); deliver it again as if after a crash.
    seed_message = harness.sb.message(ann["id"], 1)
    assert seed_message["text"] == "truth"
    harness.sb.redeliver({"update_id": 1, "message": copy.deepcopy(seed_message)})
    assert await harness.quiet(ann["id"], 1.0) == 0
    assert await count(harness, StoredSample) == 1
    press = harness.sb.press_update(ann, first, button="👍")
    await harness.sb.wait_for_answer(press["callback_query"]["id"])
    harness.sb.sandbox.state.queries[press["callback_query"]["id"]]["answered"] = False
    harness.sb.redeliver(press)
    await asyncio.sleep(1.0)
    assert await count(harness, Rating) == 1  # not toggled back off by the duplicate


@pytest.mark.parametrize("bot_settings", [{"rate_limit_per_minute": 2}])
async def test_rate_limit_and_one_request_at_a_time(harness: Harness) -> None:
    ann = harness.sb.user("Ann")
    await harness.say(ann, "one")
    await harness.say(ann, "two")
    limited = await harness.say(ann, "three")
    assert "up to 2 texts per minute" in limited["text"]
    assert await count(harness, StoredSample) == 2
    bo = harness.sb.user("Bo")
    assert (await harness.say(bo, "not limited"))["text"].startswith("not limited")


async def test_one_generation_in_flight_per_user(harness: Harness) -> None:
    ann = harness.sb.user("Ann")
    await harness.say(ann, "/length 2000")
    harness.sb.send(ann, ann["id"], "first long one")
    harness.sb.send(ann, ann["id"], "second at once")
    replies = await harness.sb.wait_for_bot_messages(ann["id"], count=2, after=1)
    texts = [r["text"] for r in replies]
    assert any("One at a time" in t for t in texts) and any(t.startswith("first long one") for t in texts)


@pytest.mark.parametrize("bot_settings", [{"max_queue": 1, "batch_max": 1}])
async def test_queue_cap_says_busy(harness: Harness) -> None:
    from bot.services import SERVICES_KEY

    # Make each generation take a while, so that eight requests at once overflow a queue of one.
    generator = harness.app.bot_data[SERVICES_KEY].generation.generators["tiny-char"]
    original = generator.make_sample

    def slow_sample(*args: Any) -> Any:  # the worker thread builds each finished sample with this
        time.sleep(0.4)
        return original(*args)

    generator.make_sample = slow_sample
    users = [harness.sb.user(f"U{i}") for i in range(8)]
    for user in users:
        harness.sb.send(user, user["id"], "everyone at once")
    replies = []
    for user in users:
        (reply,) = await harness.sb.wait_for_bot_messages(user["id"], timeout=30)
        replies.append(reply["text"])
    busy = [t for t in replies if "I'm busy right now" in t]
    done = [t for t in replies if t.startswith("everyone at once")]
    assert busy and done and len(busy) + len(done) == len(users)
    assert await count(harness, StoredSample) == len(done)
