""" "Real or dream?" end to end: a group game with three players, scores, stop, and a restart."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Game, Guess
from bot.services import SERVICES_KEY
from tests.e2e.conftest import Harness, Json, start_app, stop_app

pytestmark = pytest.mark.slow


def buttons(message: Json) -> list[str]:
    return [b["text"] for row in (message.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]


async def _game(h: Harness) -> Game:
    async def work(session: AsyncSession) -> Game:
        return (await session.scalars(select(Game).order_by(Game.id.desc()))).first()  # type: ignore[return-value]

    game: Game = await h.query(work)
    return game


async def test_a_group_game_with_three_players(shipped_harness: Harness) -> None:
    h = shipped_harness
    ann, bob, cat = h.sb.user("Ann"), h.sb.user("Bob"), h.sb.user("Cat")
    group = h.sb.group("Book club", [ann, bob, cat])
    shown = await h.say(ann, "/game 10", chat=group, timeout=60)
    assert shown["text"].startswith("Real or dream?") and "⏳ 10 s left · 0 votes" in shown["text"]
    assert buttons(shown) == ["A is real", "B is real"]
    game = await _game(h)
    fake = "B" if game.real_is == "A" else "A"
    # The seed comes from the held-out part of the book: both endings follow it.
    assert game.seed in shown["text"]
    # Each ending shown on one line (the book is hard-wrapped, the model seldom breaks a line:
    # the layout told the book's ending in 11 of 13 games of a newcomer pass).
    for stored in (game.real_text, game.fake_text):
        assert " ".join(stored.split()) in shown["text"]
    a, b = (line.split(" ", 1)[1] for line in shown["text"].splitlines() if line[:2] in ("A ", "B "))
    assert "\n" not in a + b and "  " not in a + b
    # Both endings are cut by the same rule (at a word end within 20 of 120 characters), so
    # the cut tells nothing; neither stops mid-word ("wors…" beside "…worship" gave it away).
    for ending in (game.real_text, game.fake_text):
        assert 100 <= len(ending) <= 140 and not ending.endswith(" "), ending

    assert (await h.press(ann, shown, button=f"{game.real_is} is real"))["text"] == (
        f"Your vote: {game.real_is} is real"
    )
    await h.press(bob, shown, button=f"{fake} is real")
    await h.press(cat, shown, button=f"{fake} is real")
    await h.press(cat, shown, button=f"{game.real_is} is real")  # changed her mind: the last vote counts

    # The countdown is edited (not every second), then the answer comes as a reply.
    await h.sb.wait_until(
        lambda: "3 votes" in h.sb.message(group, shown["message_id"])["text"], timeout=9, what="countdown"
    )
    (revealed,) = await h.sb.wait_for_bot_messages(group, after=1, timeout=15)
    assert f"✅ {game.real_is} is the book; {fake} was nietzsche-char (T=0.5)." in revealed["text"]
    assert "Right: Ann, Cat" in revealed["text"] and "Fooled: Bob" in revealed["text"]
    assert "Ann: 1/1" in revealed["text"] and "Bob: 0/1" in revealed["text"]
    final = h.sb.message(group, shown["message_id"])
    assert buttons(final) == [] and "⌛ ended · 3 votes" in final["text"]  # its final state
    # A stale client pressing a vote the message no longer carries: refused, nothing stored.
    too_late = h.sb.press(bob, shown, f"g:{game.id}:{game.real_is}")
    assert (await h.sb.wait_for_answer(too_late))["text"] == "This button is not valid any more."

    scores = await h.say(bob, "/scores", chat=group)
    assert "This week" in scores["text"] and "All time" in scores["text"]
    assert scores["text"].index("Ann: 1/1") < scores["text"].index("Bob: 0/1")
    fooled = await h.say(bob, "/fooled", chat=group)
    assert "nietzsche-char T=0.5: 33% of 3 votes" in fooled["text"]

    # One game at a time; only its starter (or an admin) may stop it; a stopped game scores nothing.
    await h.say(bob, "/game", chat=group, timeout=60)
    assert "already running" in (await h.say(cat, "/game", chat=group))["text"]
    assert "Only whoever started" in (await h.say(cat, "/game stop", chat=group))["text"]
    assert "stopped" in (await h.say(ann, "/game stop", chat=group))["text"]  # Ann is the group's admin
    assert "Bob: 0/1" in (await h.say(bob, "/scores", chat=group))["text"]
    assert "Use /game" in (await h.say(bob, "/game 5000", chat=group))["text"]


async def test_a_game_whose_time_ran_out_during_a_restart_is_revealed_at_start(
    shipped_harness: Harness,
) -> None:
    h = shipped_harness
    ann, bob = h.sb.user("Ann"), h.sb.user("Bob")
    group = h.sb.group("Night shift", [ann, bob])
    shown = await h.say(ann, "/game 10", chat=group, timeout=60)
    game = await _game(h)
    await h.press(bob, shown, button=f"{game.real_is} is real")
    await stop_app(h.app)  # the bot goes down mid-game
    await asyncio.sleep(max(0.0, (game.deadline - game.started_at).total_seconds()) + 0.5)
    assert len(h.sb.bot_messages(group)) == 1  # nothing revealed while it was down

    async def votes(session: AsyncSession) -> int:
        return len(list(await session.scalars(select(Guess))))

    assert await h.query(votes) == 1
    h.app = await start_app(h.settings, h.settings.model_dir)
    assert SERVICES_KEY in h.app.bot_data
    (revealed,) = await h.sb.wait_for_bot_messages(group, after=1, timeout=15)
    assert "Right: Bob" in revealed["text"] and "Bob: 1/1" in revealed["text"]
    assert (await _game(h)).revealed_at is not None


async def test_a_name_with_bidi_overrides_is_shown_clean_in_the_reveal_and_scores(
    shipped_harness: Harness,
) -> None:
    """Issue 24, item 11: right-to-left overrides in a display name reached game reveals and
    /scores (they were stripped elsewhere)."""
    h = shipped_harness
    mallory = h.sb.user("\u202eyrollam\u202c Eve\u2066x\u2069")
    group = h.sb.group("Book club", [mallory])
    shown = await h.say(mallory, "/game 10", chat=group, timeout=60)
    game = await _game(h)
    await h.press(mallory, shown, button=f"{game.real_is} is real")
    (revealed,) = await h.sb.wait_for_bot_messages(group, after=1, timeout=30)
    scores = await h.say(mallory, "/scores", chat=group)
    for said in (revealed["text"], scores["text"]):
        assert "yrollam Evex" in said
        assert not any(c in said for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
