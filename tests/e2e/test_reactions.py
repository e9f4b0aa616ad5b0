"""Reactions as ratings: a reaction on a sample is its reactor's rating, the very one the
👍/👎 buttons set, and its counts follow on the message; anonymous ones are counts only."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repository as repo
from bot.db.models import AnonymousReactions, Rating, StoredSample
from tests.e2e.conftest import Harness

pytestmark = pytest.mark.slow

Json = dict[str, Any]


def counts(harness: Harness, message: Json) -> list[str]:
    """The 👍/👎 buttons of a message as it is now."""
    current = harness.sb.message(message["chat"]["id"], message["message_id"])
    return [b["text"] for b in current["reply_markup"]["inline_keyboard"][0]]


async def shows(harness: Harness, message: Json, up: int, down: int) -> None:
    """Wait until the message's keyboard shows these counts."""
    await harness.sb.wait_until(
        lambda: counts(harness, message) == [f"👍 {up}", f"👎 {down}"], what=f"👍 {up} 👎 {down}"
    )


async def ratings(harness: Harness) -> list[tuple[int, str]]:
    """Every stored rating: (score, source)."""

    async def work(session: AsyncSession) -> list[tuple[int, str]]:
        rows = await session.execute(select(Rating.score, Rating.source).order_by(Rating.user_id))
        return [(int(r[0]), str(r[1])) for r in rows]

    return list(await harness.query(work))


async def sample_said(harness: Harness, user: Json, text: str, *, chat: int | None = None) -> Json:
    """Ask for a sample and return its message once the bot has recorded which message it is
    (it records that just after the send: a reaction quicker than that finds no sample)."""
    message = await harness.say(user, text, chat=chat)

    async def recorded(session: AsyncSession) -> bool:
        shown = await repo.samples_of_message(
            session, chat_telegram_id=message["chat"]["id"], message_id=message["message_id"]
        )
        return bool(shown)

    for _ in range(100):
        if await harness.query(recorded):
            return message
        await asyncio.sleep(0.05)
    raise TimeoutError(f"sample message {message['message_id']} not recorded")


async def settled(harness: Harness, seconds: float = 0.5) -> None:
    """Every queued update taken by the bot, and time to handle it (for "nothing happened")."""
    await harness.sb.wait_until(lambda: harness.sb.pending_updates() == 0, what="updates taken")
    await asyncio.sleep(seconds)


async def test_a_reaction_rates_replaces_and_withdraws(harness: Harness) -> None:
    ann = harness.sb.user("Ann")
    sample = await sample_said(harness, ann, "the will to truth")
    harness.sb.react(ann, sample, "👍")
    await shows(harness, sample, 1, 0)
    assert await ratings(harness) == [(1, "reaction")]
    harness.sb.react(ann, sample, "👎")  # replaced: now a dislike
    await shows(harness, sample, 0, 1)
    harness.sb.react(ann, sample, "🔥")  # any liked emoji is a like
    await shows(harness, sample, 1, 0)
    harness.sb.react(ann, sample)  # taken back: the rating is withdrawn
    await shows(harness, sample, 0, 0)
    assert await ratings(harness) == []
    # Several at once (Premium): the newest mapped one decides.
    harness.sb.react(ann, sample, "👍", "🎉", "💩")
    await shows(harness, sample, 0, 1)
    harness.sb.react(ann, sample, "👍", "🎉")  # 💩 taken back: the 👍 still set says like
    await shows(harness, sample, 1, 0)

    async def stored(session: AsyncSession) -> tuple[int, int]:
        row = (await session.execute(select(StoredSample.up_votes, StoredSample.down_votes))).one()
        return int(row[0]), int(row[1])

    assert await harness.query(stored) == (1, 0)


async def test_a_reaction_and_a_button_are_one_rating(harness: Harness) -> None:
    ann = harness.sb.user("Ann")
    sample = await sample_said(harness, ann, "the will to truth")
    harness.sb.react(ann, sample, "❤")
    await shows(harness, sample, 1, 0)
    answer = await harness.press(ann, sample, button="👎")  # the same rating, changed by a button
    assert answer["text"] == "You disliked it 👎"
    await shows(harness, sample, 0, 1)
    assert await ratings(harness) == [(-1, "button")]
    # The rating is the button's now: taking the reaction back leaves it.
    harness.sb.react(ann, sample)
    await settled(harness)
    assert counts(harness, sample) == ["👍 0", "👎 1"] and await ratings(harness) == [(-1, "button")]
    # A button's rating, then a reaction: the reaction takes it over, and its removal withdraws it.
    harness.sb.react(ann, sample, "😁")
    await shows(harness, sample, 1, 0)
    harness.sb.react(ann, sample)
    await shows(harness, sample, 0, 0)
    assert await ratings(harness) == []


async def test_other_reactions_and_other_messages_are_ignored(harness: Harness) -> None:
    ann = harness.sb.user("Ann")
    sample = await sample_said(harness, ann, "the will to truth")
    edits = len(harness.sb.calls("editMessageReplyMarkup"))
    harness.sb.react(ann, sample, "🎉")  # not in the mapping
    settings = await harness.say(ann, "/settings")  # a bot message that is no sample
    harness.sb.react(ann, settings, "👍")
    own = harness.sb.message(ann["id"], sample["message_id"] - 1)  # and the user's own message
    assert own["from"]["id"] == ann["id"]
    harness.sb.react(ann, own, "👍")
    await settled(harness)
    assert await ratings(harness) == []
    assert len(harness.sb.calls("editMessageReplyMarkup")) == edits
    assert await harness.quiet(ann["id"], 0.2) == 0  # nothing said about it either
    # A liked reaction next to the ignored one counts; the ignored one going changes nothing.
    harness.sb.react(ann, sample, "🎉", "👏")
    await shows(harness, sample, 1, 0)
    harness.sb.react(ann, sample, "👏")
    await settled(harness)
    assert await ratings(harness) == [(1, "reaction")]


async def test_only_the_author_rates_a_private_sample(harness: Harness) -> None:
    """Telegram lets nobody else into a private chat; a forged reaction or press is refused."""
    ann, bo = harness.sb.user("Ann"), harness.sb.user("Bo")
    sample = await sample_said(harness, ann, "my secret seed")
    harness.sb.react(bo, sample, "👍")
    await settled(harness)
    assert await ratings(harness) == [] and counts(harness, sample) == ["👍 0", "👎 0"]
    refused = await harness.press(bo, sample, button="👍")
    assert refused["text"] == "This button is not valid any more."
    assert await ratings(harness) == []
    harness.sb.react(ann, sample, "👍")  # hers counts
    await shows(harness, sample, 1, 0)


async def test_group_reactions_need_the_bot_as_admin(harness: Harness) -> None:
    ann, bo, cy = harness.sb.user("Ann"), harness.sb.user("Bo"), harness.sb.user("Cy")
    club = harness.sb.group("club", [ann, bo, cy], admins=[ann, harness.sb.bot])
    sample = await sample_said(harness, ann, "/gen truth", chat=club)
    harness.sb.react(bo, sample, "👍")
    harness.sb.react(cy, sample, "🤮")
    await harness.press(ann, sample, button="👍")
    await shows(harness, sample, 2, 1)
    plain = harness.sb.group("plain", [ann, bo])  # the bot is no admin: Telegram sends nothing
    other = await sample_said(harness, ann, "/gen truth", chat=plain)
    assert harness.sb.react(bo, other, "👍") is None
    await settled(harness)
    assert counts(harness, other) == ["👍 0", "👎 0"]


async def test_anonymous_reactions_are_counts_not_ratings(harness: Harness) -> None:
    ann = harness.sb.user("Ann")
    sample = await sample_said(harness, ann, "the will to truth")
    harness.sb.react_anonymously(sample, {"👍": 3, "🔥": 1, "🥱": 2, "🎉": 4})

    async def anonymous(session: AsyncSession) -> list[tuple[int, int]]:
        rows = await session.execute(select(AnonymousReactions.likes, AnonymousReactions.dislikes))
        return [(int(r[0]), int(r[1])) for r in rows]

    await harness.sb.wait_until(lambda: harness.sb.pending_updates() == 0)
    for _ in range(50):
        if await harness.query(anonymous):
            break
        await asyncio.sleep(0.1)
    assert await harness.query(anonymous) == [(4, 2)]
    assert await ratings(harness) == [] and counts(harness, sample) == ["👍 0", "👎 0"]
    harness.sb.react_anonymously(sample, {"👍": 1})
    for _ in range(50):
        if await harness.query(anonymous) == [(1, 0)]:
            break
        await asyncio.sleep(0.1)
    assert await harness.query(anonymous) == [(1, 0)]


async def test_reactions_arrive_by_webhook_too(harness: Harness) -> None:
    """setWebhook names the reactions as getUpdates does (Telegram leaves them out otherwise)."""
    from tests.e2e.conftest import start_app, stop_app

    await stop_app(harness.app)  # the same bot in webhook mode
    harness.app = await start_app(harness.settings, harness.settings.model_dir, webhook_secret="s3cret")
    assert "message_reaction" in (harness.sb.sandbox.state.webhook["allowed_updates"] or [])
    ann = harness.sb.user("Ann")
    sample = await sample_said(harness, ann, "the will to truth")
    harness.sb.react(ann, sample, "🤩")
    await shows(harness, sample, 1, 0)
