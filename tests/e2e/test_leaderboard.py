"""/leaderboard end to end: rate limited per user (refusal said once), and served from a cache
that is refreshed after a new counted vote but not refitted when nothing changed."""

from __future__ import annotations

import pytest

from bot.handlers.leaderboard import leaderboard_state
from tests.e2e.conftest import Harness

pytestmark = pytest.mark.slow

NONE_YET = "No counted duel votes yet"
WAIT = "one /leaderboard every 10 s"


async def test_a_second_leaderboard_within_the_limit_is_refused_once(harness: Harness) -> None:
    ann, bo = harness.sb.user("Ann"), harness.sb.user("Bo")
    assert NONE_YET in (await harness.say(ann, "/leaderboard"))["text"]
    assert WAIT in (await harness.say(ann, "/leaderboard"))["text"]
    harness.sb.send(ann, ann["id"], "/leaderboard")
    assert await harness.quiet(ann["id"]) == 0  # refused again, and not told twice
    assert NONE_YET in (await harness.say(bo, "/leaderboard"))["text"]  # the limit is per user
    state = leaderboard_state(harness.app)
    assert state.cache.computed == 1  # Bo was served from the cache


async def test_the_cache_is_refreshed_after_a_new_counted_vote(harness: Harness) -> None:
    harness.app.bot_data["services"].settings.duel_min_vote_s = 0.0
    state = leaderboard_state(harness.app)
    state.cache.every_s = 0.0  # look at the votes on every ask (5 s by default)
    ann, bo, cy = harness.sb.user("Ann"), harness.sb.user("Bo"), harness.sb.user("Cy")
    assert NONE_YET in (await harness.say(ann, "/leaderboard"))["text"]
    assert NONE_YET in (await harness.say(bo, "/leaderboard"))["text"]
    assert state.cache.computed == 1  # nothing changed: no refit

    duel = await harness.say(ann, "/duel the free spirit")
    await harness.press(ann, duel, button="A is better")
    before = len(harness.sb.bot_messages(cy["id"]))
    harness.sb.send(cy, cy["id"], "/leaderboard")
    photo, table = await harness.sb.wait_for_bot_messages(cy["id"], after=before, count=2)
    assert photo["photo"][0]["file_size"] > 10_000
    assert table["text"].splitlines()[0] == "Leaderboard (1 counted duel vote)"
    assert state.cache.computed == 2
