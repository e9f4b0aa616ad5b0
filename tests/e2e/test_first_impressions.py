"""Project issue 13, "First impressions": what a new user meets in their first minutes."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import StoredSample
from bot.services import SERVICES_KEY
from core.word_end import SENTENCE_END_MARGIN, margin
from tests.e2e.conftest import Harness

pytestmark = pytest.mark.slow


def buttons(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


def slow_down(harness: Harness, model: str, seconds: float) -> None:
    generator = harness.app.bot_data[SERVICES_KEY].generation.generators[model]
    original = generator.make_sample

    def slow(*args: Any) -> Any:  # the worker thread builds each finished sample with this
        time.sleep(seconds)
        return original(*args)

    generator.make_sample = slow


async def test_a_settings_button_redraws_its_message_for_the_presser_only(harness: Harness) -> None:
    ann, bo = harness.sb.user("Ann"), harness.sb.user("Bo")
    shown = await harness.say(ann, "/temp")
    answer = await harness.press(ann, shown, button="0.2")
    assert "set to 0.2" in answer["text"]
    await harness.sb.wait_until(
        lambda: "Your temperature is 0.2" in harness.sb.message(ann["id"], shown["message_id"])["text"]
    )
    assert "✓ 0.2" in buttons(harness.sb.message(ann["id"], shown["message_id"]))
    listing = await harness.say(ann, "/model")
    await harness.press(ann, listing, button="tiny-two")
    await harness.sb.wait_until(
        lambda: "✓ tiny-two" in harness.sb.message(ann["id"], listing["message_id"])["text"]
    )
    assert "✓ tiny-char" not in harness.sb.message(ann["id"], listing["message_id"])["text"]

    # In a group, Bo pressing a button on Ann's /temp message changes Bo's setting only.
    group = harness.sb.group("club", [ann, bo])
    anns = await harness.say(ann, "/temp", chat=group)
    before = harness.sb.message(group, anns["message_id"])
    answer = await harness.press(bo, anns, button="1.2")
    assert "set to 1.2" in answer["text"]
    assert "T=1.2" in (await harness.say(bo, "/gen truth", chat=group))["text"]
    assert "T=0.2" in (await harness.say(ann, "/gen truth", chat=group))["text"]
    assert harness.sb.message(group, anns["message_id"]) == before  # Ann's message is untouched


async def _until_busy(harness: Harness, user_id: int, timeout: float = 10) -> None:
    """Wait until the user's request is running (the limits are async: in memory or shared)."""
    limits = harness.app.bot_data[SERVICES_KEY].limits
    for _ in range(int(timeout / 0.02)):
        if await limits.busy(user_id):
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("the request never started")


async def test_refusals_do_not_flood_the_chat(harness: Harness) -> None:
    ann = harness.sb.user("Ann")
    first = await harness.say(ann, "truth")
    slow_down(harness, "tiny-char", 1.0)
    before = len(harness.sb.bot_messages(ann["id"]))
    # A double click on 🔁: the second press is refused with a toast, not a message.
    harness.sb.press(ann, first, button="Again")
    await _until_busy(harness, ann["id"])
    refused = await harness.press(ann, first, button="Again")
    assert "still writing" in refused["text"]
    (again,) = await harness.sb.wait_for_bot_messages(ann["id"], after=before)
    assert again["text"].startswith("truth")
    assert await harness.quiet(ann["id"], 1.5) == 0
    # 14 seeds in a burst: one generated text and at most one "one at a time" notice.
    before = len(harness.sb.bot_messages(ann["id"]))
    for i in range(14):
        harness.sb.send(ann, ann["id"], f"seed {i}")
    await harness.sb.wait_for_bot_messages(ann["id"], after=before)
    await harness.quiet(ann["id"], 2.0)
    sent = harness.sb.bot_messages(ann["id"])[before:]
    notices = [m for m in sent if "One at a time" in m["text"]]
    assert len(notices) <= 1 and len(sent) - len(notices) == 1, [m["text"][:30] for m in sent]


async def test_a_chinese_user_starts_on_the_chinese_model_with_a_word_length(harness: Harness) -> None:
    li = harness.sb.user("Li", language_code="zh-hans")
    reply = await harness.say(li, "宝玉笑道")
    assert reply["text"].startswith("宝玉笑道") and "tiny-zh" in reply["text"]
    # A word model's default length (100 words, not 400), ended at a sentence end near it.
    words = int(re.search(r"· (\d+) 个词", reply["text"])[1])  # type: ignore[index]
    assert 50 <= words <= 100 + SENTENCE_END_MARGIN
    settings = await harness.say(li, "/settings")
    assert "tiny-zh" in settings["text"]
    # A seed in the other script gets a one-line hint to switch models.
    ann = harness.sb.user("Ann")
    latin = await harness.say(li, "the will to truth")
    assert "/model" in latin["text"].split("\n\n")[0]
    await harness.say(ann, "/length 50")
    cjk = await harness.say(ann, "天下")
    assert "/model" in cjk["text"].split("\n\n")[0]
    plain = await harness.say(ann, "the will")
    assert "/model" not in plain["text"]


async def test_rate_with_nothing_to_rate_says_what_can_be(harness: Harness) -> None:
    ann = harness.sb.user("Ann")
    await harness.say(ann, "truth")
    none = await harness.say(ann, "/rate")
    assert "🌐" in none["text"] and "group" in none["text"]


async def test_top_keeps_the_space_between_seed_and_continuation(harness: Harness) -> None:
    ann, bo = harness.sb.user("Ann"), harness.sb.user("Bo")
    group = harness.sb.group("club", [ann, bo])
    first = await harness.say(ann, "/gen truth", chat=group)
    # A reply to the bot is a seed as typed: the trailing space stays.
    made = await harness.say(ann, "something ", chat=group, reply_to=first["message_id"])
    await harness.press(bo, made, button="👍")

    async def stored(session: AsyncSession) -> StoredSample:
        return (await session.scalars(select(StoredSample).where(StoredSample.seed != "truth"))).one()

    sample = await harness.query(stored)
    assert sample.seed == "something "
    top = await harness.say(ann, "/top", chat=group)
    line = next(part for part in top["text"].split("\n\n") if "something" in part)
    assert " ".join((sample.seed + sample.text).split())[:40] in line


async def test_wording_of_decimals_unknown_commands_and_a_second_forget(harness: Harness) -> None:
    ann = harness.sb.user("Ann")
    precise = await harness.say(ann, "/temp 0.123456789")
    assert "3 decimals" in precise["text"]
    unknown = await harness.say(ann, "/foo")
    assert unknown["text"].startswith("I don't know /foo") and "/temp" in unknown["text"]
    await harness.say(ann, "truth")
    ask = await harness.say(ann, "/forget")
    await harness.press(ann, ask, button="Yes")
    await harness.sb.wait_until(lambda: "Done" in harness.sb.message(ann["id"], ask["message_id"])["text"])
    again = await harness.say(ann, "/forget")
    assert again["text"] == "I had nothing stored about you."


async def test_a_char_sample_ends_on_a_word(harness: Harness) -> None:
    from core.generator import Request
    from core.word_end import WORD_END_MARGIN, end_on_word

    ann = harness.sb.user("Ann")
    await harness.say(ann, "/length 50")
    reply = await harness.say(ann, "the will to truth")

    async def stored(session: AsyncSession) -> StoredSample:
        return (await session.scalars(select(StoredSample))).one()

    sample = await harness.query(stored)
    assert sample.length == 50
    # The same draw, generated again in full: the stored text is it, ended on a word.
    generator = harness.app.bot_data[SERVICES_KEY].generation.generators["tiny-char"]
    (full,) = generator.generate(
        [
            Request(
                sample.seed, length=50 + WORD_END_MARGIN, temperature=sample.temperature, rng=sample.rng_seed
            )
        ]
    )
    assert sample.text == end_on_word(full.text, 50)
    assert f"· {len(sample.text)} characters" in reply["text"]


async def test_a_group_admin_sets_the_groups_defaults(harness: Harness) -> None:
    boss, ann, bo = harness.sb.user("Boss"), harness.sb.user("Ann"), harness.sb.user("Bo")
    group = harness.sb.group("club", [boss, ann, bo], admins=[boss])
    refused = await harness.say(ann, "/groupdefault temp 1.2", chat=group)
    assert "Only this group's admins" in refused["text"]
    hot = await harness.say(boss, "/groupdefault temp hot", chat=group)
    # /temp's answer, its example this command's (the personal one would not set the group's)
    assert "Temperature must be a number from 0 to 2, like /groupdefault temp 0.7" in hot["text"]
    assert "Saved" in (await harness.say(boss, "/groupdefault temp 1.2", chat=group))["text"]
    assert "Saved" in (await harness.say(boss, "/groupdefault model tiny-two", chat=group))["text"]
    shown = await harness.say(ann, "/groupdefault", chat=group)
    assert "model: tiny-two" in shown["text"] and "temperature: 1.2" in shown["text"]
    # Members who chose nothing get the group's defaults; a member's own choice wins.
    assert "tiny-two · T=1.2" in (await harness.say(ann, "/gen truth", chat=group))["text"]
    await harness.say(bo, "/temp 0.2")  # in private: Bo's own setting, everywhere
    assert "tiny-two · T=0.2" in (await harness.say(bo, "/gen truth", chat=group))["text"]
    # Elsewhere Ann is on the bot's defaults still.
    assert "tiny-char · T=0.5" in (await harness.say(ann, "truth"))["text"]
    assert "in a group" in (await harness.say(ann, "/groupdefault temp 1"))["text"]
    assert "Saved" in (await harness.say(boss, "/groupdefault clear", chat=group))["text"]
    assert "tiny-char · T=0.5" in (await harness.say(ann, "/gen truth", chat=group))["text"]


async def test_a_groups_default_length_counts_in_the_members_unit(harness: Harness) -> None:
    """Newcomer pass, 2026-12-07: an admin on a word model set `/groupdefault length 200` as
    200 *words* ("length: 200 word"), so members on the bot's character model still got 400
    characters, and `length 5` passed (characters start at 20). The length counts in the unit
    of the group's model, else the bot's default; a bad model or temperature says why."""
    boss, ann = harness.sb.user("Boss"), harness.sb.user("Ann")
    group = harness.sb.group("club", [boss, ann], admins=[boss])
    await harness.say(boss, "/model tiny-zh")  # the admin's own model counts words
    short = await harness.say(boss, "/groupdefault length 5", chat=group)
    assert "from 20 to 2000, like /groupdefault length 400" in short["text"], short["text"]
    saved = await harness.say(boss, "/groupdefault length 200", chat=group)
    assert "length: 200 characters" in saved["text"], saved["text"]
    assert "length: 200 characters" in (await harness.say(ann, "/settings", chat=group))["text"]
    sample = await harness.say(ann, "/gen truth", chat=group)
    shown = int(sample["text"].rsplit(" characters", 1)[0].rsplit(" ", 1)[1])
    assert abs(shown - 200) <= margin("char"), sample["text"][-60:]  # 200, ended at a word
    bad = await harness.say(boss, "/groupdefault model nosuch", chat=group)
    assert "There is no model called nosuch" in bad["text"]
    await harness.say(boss, "/groupdefault model tiny-zh", chat=group)
    words = await harness.say(boss, "/groupdefault length 50", chat=group)
    assert "length: 200 characters / 50 words" in words["text"], words["text"]


async def test_an_anonymous_group_admin_sets_the_groups_defaults(harness: Harness) -> None:
    """An admin posting as the group (Telegram sends `sender_chat` = the group, from
    GroupAnonymousBot) could not use /groupdefault (issue 23); a member posting as a channel can't."""
    anonymous, ann = harness.sb.user("Group"), harness.sb.user("Ann")
    group = harness.sb.group("club", [anonymous, ann], admins=[ann])
    as_group = {"sender_chat": {"id": group, "type": "supergroup", "title": "club"}}
    harness.sb.send(anonymous, group, "/groupdefault temp 1.2", extra=as_group)
    (saved,) = await harness.sb.wait_for_bot_messages(group, timeout=20)
    assert "Saved" in saved["text"]
    as_channel = {"sender_chat": {"id": -100999, "type": "channel", "title": "elsewhere"}}
    harness.sb.send(anonymous, group, "/groupdefault temp 0.2", extra=as_channel)
    (refused,) = await harness.sb.wait_for_bot_messages(group, after=1, timeout=20)
    assert "Only this group's admins" in refused["text"]
    assert "temperature: 1.2" in (await harness.say(ann, "/groupdefault", chat=group))["text"]


async def test_acrostic_without_a_poem_model_says_so(harness: Harness) -> None:
    """No model trained on the poems is loaded here (the shipped bot has none yet)."""
    ann = harness.sb.user("Ann")
    assert "No poem model is loaded" in (await harness.say(ann, "/acrostic 新年快乐"))["text"]
