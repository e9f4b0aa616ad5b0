"""Trust: samples stay in their chat unless shared, presses are checked against where they
came from, every press is answered."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import DuelVote, Guess, Rating, StoredSample
from tests.e2e.conftest import Harness

pytestmark = pytest.mark.slow

INVALID = "This button is not valid any more."


def buttons(message: dict[str, object]) -> list[str]:
    markup = message.get("reply_markup") or {}
    assert isinstance(markup, dict)
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


async def count(harness: Harness, model: type) -> int:
    async def work(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    return int(await harness.query(work))


async def test_a_private_sample_is_seen_only_where_it_was_made_until_shared(harness: Harness) -> None:
    ann, bo = harness.sb.user("Ann"), harness.sb.user("Bo")
    mine = await harness.say(ann, "my secret seed")
    assert buttons(mine) == ["👍 0", "👎 0", "🔁 Again", "🌐 Share", "🆚 Duel"]
    await harness.press(ann, mine, button="👍")  # net +1: enough for /top
    assert "Nothing left to rate" in (await harness.say(bo, "/rate"))["text"]
    assert "No sample has more 👍 than 👎 yet" in (await harness.say(bo, "/top"))["text"]
    assert "my secret seed" in (await harness.say(ann, "/top"))["text"]  # her own: yes

    group = harness.sb.group("club", [ann, bo])
    in_group = await harness.say(ann, "/gen group seed", chat=group)
    refused = await harness.press(bo, in_group, button="Share")
    assert refused["text"] == "Only the author can share this sample."
    assert "my secret seed" not in (await harness.say(bo, "/rate", chat=group))["text"]

    shared = await harness.press(ann, mine, button="Share")
    assert shared["text"] == "Shared: anyone can now see it in /rate and /top."
    await harness.sb.wait_until(
        lambda: "🔒 Unshare" in buttons(harness.sb.message(ann["id"], mine["message_id"]))
    )
    shown = await harness.say(bo, "/rate")
    assert "my secret seed" in shown["text"]
    assert (await harness.press(bo, shown, button="👍"))["text"] == "You liked it 👍"  # rated from afar
    assert "my secret seed" in (await harness.say(bo, "/top"))["text"]
    top_in_group = await harness.say(bo, "/top", chat=group)
    assert "my secret seed" not in top_in_group["text"]  # a group sees its own samples only

    unshared = await harness.press(ann, mine, button="Unshare")
    assert unshared["text"] == "Private again: only this chat sees it."
    assert "No sample has more 👍 than 👎 yet" in (await harness.say(bo, "/top"))["text"]


async def test_forget_deletes_shared_samples_too(harness: Harness) -> None:
    ann, bo = harness.sb.user("Ann"), harness.sb.user("Bo")
    mine = await harness.say(ann, "shared then forgotten")
    await harness.press(ann, mine, button="👍")
    await harness.press(ann, mine, button="Share")
    assert "shared then forgotten" in (await harness.say(bo, "/top"))["text"]
    ask = await harness.say(ann, "/forget")
    await harness.press(ann, ask, button="Yes")
    await harness.sb.wait_until(lambda: "Done" in harness.sb.message(ann["id"], ask["message_id"])["text"])
    assert await count(harness, StoredSample) == 0
    assert "No sample has more 👍 than 👎 yet" in (await harness.say(bo, "/top"))["text"]
    assert "Nothing left to rate" in (await harness.say(bo, "/rate"))["text"]


async def test_a_press_without_a_message_is_refused(harness: Harness) -> None:
    ann = harness.sb.user("Ann")
    mine = await harness.say(ann, "truth")

    async def sample_id(session: AsyncSession) -> int:
        return int((await session.scalars(select(StoredSample.id))).one())

    sid = await harness.query(sample_id)
    for data in (f"r:{sid}:+", f"a:{sid}", f"s:{sid}:1", "n", "t:1", f"f:y:{ann['id']}"):
        query = harness.sb.press_without_message(ann, data)
        assert (await harness.sb.wait_for_answer(query))["text"] == INVALID, data
    assert await harness.quiet(ann["id"], 0.5) == 0  # nothing regenerated
    assert await count(harness, Rating) == 0 and await count(harness, StoredSample) == 1
    assert buttons(harness.sb.message(ann["id"], mine["message_id"]))[0] == "👍 0"


async def test_a_button_outside_the_samples_chat_stops_working_when_unshared(harness: Harness) -> None:
    """Bo rated Ann's shared sample from his /rate; once she unshares it, that old button in
    his chat is refused (the sample's chat is not the press's chat any more)."""
    ann, bo = harness.sb.user("Ann"), harness.sb.user("Bo")
    mine = await harness.say(ann, "truth")
    await harness.press(ann, mine, button="Share")
    shown = await harness.say(bo, "/rate")
    await harness.press(ann, mine, button="Unshare")
    stale = await harness.press(bo, shown, button="👍")
    assert stale["text"] == INVALID
    again = await harness.press(bo, shown, button="Again")
    assert again["text"] == INVALID and await harness.quiet(bo["id"], 0.5) == 0
    assert await count(harness, Rating) == 0


async def test_a_redelivered_press_is_answered(harness: Harness) -> None:
    ann = harness.sb.user("Ann")
    mine = await harness.say(ann, "truth")
    harness.sb.faults.add("answerCallbackQuery", "500", times=4)  # the first handling cannot answer
    update = harness.sb.press_update(ann, mine, button="👍")
    await harness.sb.wait_until(lambda: len(harness.sb.faults.fired) >= 4, timeout=20)
    await harness.sb.wait_until(lambda: "👍 1" in str(harness.sb.message(ann["id"], mine["message_id"])))
    harness.sb.redeliver(update)
    answer = await harness.sb.wait_for_answer(update["callback_query"]["id"], timeout=10)
    assert answer["text"] == "Already counted"
    assert await count(harness, Rating) == 1


async def test_a_mention_after_emoji_is_cut_out_exactly(harness: Harness) -> None:
    """Entity offsets count UTF-16 code units: an emoji is two of them, one Python character."""
    ann = harness.sb.user("Ann")
    group = harness.sb.group("club", [ann])
    reply = await harness.say(ann, "🙂🙂 @lstm_test_bot what then?", chat=group)
    assert reply["text"].startswith("🙂🙂 what then?")

    async def seed(session: AsyncSession) -> str:
        return str((await session.scalars(select(StoredSample.seed))).one())

    assert await harness.query(seed) == "🙂🙂 what then?"
    tail = await harness.say(ann, "𝔞𝔟𝔠 truth @lstm_test_bot", chat=group)
    assert tail["text"].startswith("𝔞𝔟𝔠 truth")


@pytest.mark.parametrize("bot_settings", [{"rate_limit_per_minute": 5}])
async def test_compare_costs_four_slots(harness: Harness) -> None:
    ann = harness.sb.user("Ann")
    compared = await harness.say(ann, "/compare truth")
    assert "four temperatures" in compared["text"]
    assert (await harness.say(ann, "one"))["text"].startswith("one")  # slot 5 of 5
    refused = await harness.say(ann, "two")
    assert "up to 5 texts per minute" in refused["text"]
    harness.sb.send(ann, ann["id"], "/compare again")  # refused too, silently: one notice is enough
    assert await harness.quiet(ann["id"], 1.0) == 0


@pytest.mark.parametrize("bot_settings", [{"rate_limit_per_minute": 2, "max_queue": 1}])
async def test_a_refused_request_costs_no_slot(harness: Harness) -> None:
    import time as time_module
    from typing import Any

    from bot.services import SERVICES_KEY

    generation = harness.app.bot_data[SERVICES_KEY].generation
    generator = generation.generators["tiny-char"]
    original = generator.make_sample

    def slow(*args: Any) -> Any:  # the worker thread builds each finished sample with this
        time_module.sleep(2.0)  # a wide window for the next seed to queue behind it, even under load
        return original(*args)

    generator.make_sample = slow
    ann, bo, cy = harness.sb.user("Ann"), harness.sb.user("Bo"), harness.sb.user("Cy")
    harness.sb.send(bo, bo["id"], "bo")  # taken by the worker
    await harness.sb.wait_until(lambda: harness.sb.chat_actions(bo["id"]), timeout=10)
    harness.sb.send(cy, cy["id"], "cy")  # waits in the queue, which is then full
    await harness.sb.wait_until(lambda: generation.queue_depth >= 1, timeout=10)
    busy = await harness.say(ann, "refused")
    assert "busy" in busy["text"]
    await harness.sb.wait_for_bot_messages(cy["id"], timeout=20)
    generator.make_sample = original
    assert (await harness.say(ann, "first"))["text"].startswith("first")
    assert (await harness.say(ann, "second"))["text"].startswith("second")  # the refusal cost nothing
    assert "up to 2 texts per minute" in (await harness.say(ann, "third"))["text"]


async def test_nobody_votes_or_rates_in_someone_elses_private_chat(shipped_harness: Harness) -> None:
    """Newcomer pass, 2026-12-07: Bo's forged presses on Ann's private duel and game counted
    as votes (a rating there was refused). Telegram lets nobody else into a private chat, so
    the press door refuses every press there from anyone but its user; Ann's own still count."""

    harness = shipped_harness  # the game needs the shipped model's book
    ann, bo = harness.sb.user("Ann"), harness.sb.user("Bo")
    sample = await harness.say(ann, "truth")
    duel = await harness.say(ann, "/duel the free spirit")
    game = await harness.say(ann, "/game", timeout=60)
    for message, label in ((duel, "A is better"), (sample, "👍"), (game, "is real")):
        assert (await harness.press(bo, message, button=label))["text"] == INVALID, label
    assert await count(harness, DuelVote) == 0 and await count(harness, Guess) == 0
    assert await count(harness, Rating) == 0
    await harness.press(ann, game, button="is real")
    assert await count(harness, Guess) == 1


async def test_a_stale_share_or_someone_elses_forget_is_answered_for_what_it_is(harness: Harness) -> None:
    """Newcomer pass, 2026-12-07: a double-tapped 🌐 Share (the second tap from the button that
    had become 🔒 Unshare) and a press on someone else's /forget both said "This button is not
    valid any more"; they now say what happened, and still change nothing."""
    ann, bo = harness.sb.user("Ann"), harness.sb.user("Bo")
    mine = await harness.say(ann, "truth")
    stale = {**mine}  # the message as the first tap saw it: still carrying 🌐 Share
    assert (await harness.press(ann, mine, button="Share"))["text"].startswith("Shared")
    await harness.sb.wait_until(lambda: "Unshare" in str(harness.sb.message(ann["id"], mine["message_id"])))
    share = next(
        b["callback_data"]
        for row in stale["reply_markup"]["inline_keyboard"]
        for b in row
        if "Share" in b["text"]
    )
    assert (await harness.press(ann, mine, share))["text"] == "Already shared."
    assert "Unshare" in str(harness.sb.message(ann["id"], mine["message_id"]))  # still shared

    group = harness.sb.group("club", [ann, bo])
    ask = await harness.say(ann, "/forget", chat=group)
    assert (await harness.press(bo, ask, button="Yes"))[
        "text"
    ] == "Only whoever sent this /forget can answer it."
    assert await count(harness, StoredSample) == 1  # Ann's sample is still there
