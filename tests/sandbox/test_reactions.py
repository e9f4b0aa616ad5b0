"""Reactions in the sandbox: Telegram's message_reaction and message_reaction_count updates,
sent only to a bot that asked for them, in private chats and where it is an administrator."""

from __future__ import annotations

import aiohttp
from telegram import Bot, ReactionTypeEmoji

from sandbox.testing import SandboxServer

REACTIONS = ["message_reaction", "message_reaction_count"]


async def test_a_reaction_reaches_only_a_bot_that_asked(sb: SandboxServer, bot: Bot) -> None:
    ann = sb.user("Ann")
    sent = await bot.send_message(ann["id"], "a sample")
    message = sb.message(ann["id"], sent.message_id)
    assert sb.react(ann, message, "👍") is not None
    # Telegram's default leaves reactions out; naming them is remembered by later calls.
    assert await bot.get_updates(timeout=0) == ()
    (update,) = await bot.get_updates(timeout=0, allowed_updates=["message", *REACTIONS])
    reaction = update.message_reaction
    assert reaction is not None and reaction.user is not None and reaction.user.id == ann["id"]
    assert (reaction.chat.id, reaction.message_id) == (ann["id"], sent.message_id)
    assert reaction.old_reaction == () and reaction.new_reaction == (ReactionTypeEmoji("👍"),)

    sb.react(ann, message, "👍", "🔥")  # Premium: several, oldest first
    sb.react(ann, message)  # all taken back
    updates = await bot.get_updates(offset=update.update_id + 1, timeout=0)  # allowed: as before
    changes = [(u.message_reaction.old_reaction, u.message_reaction.new_reaction) for u in updates]
    like, fire = ReactionTypeEmoji("👍"), ReactionTypeEmoji("🔥")
    assert changes == [((like,), (like, fire)), ((like, fire), ())]
    assert sb.react(ann, message) is None  # no change: no update
    assert sb.reactions(ann["id"], sent.message_id) == {}


async def test_a_group_sends_reactions_only_to_an_admin_bot(sb: SandboxServer, bot: Bot) -> None:
    ann, bo = sb.user("Ann"), sb.user("Bo")
    plain = sb.group("plain", [ann, bo])
    admin = sb.group("with the bot as admin", [ann, bo], admins=[ann, sb.bot])
    for chat_id in (plain, admin):
        sent = await bot.send_message(chat_id, "a sample")
        message = sb.message(chat_id, sent.message_id)
        sb.react(bo, message, "🤮")
        sb.react(ann, message, "🤮")
        assert sb.reactions(chat_id, sent.message_id) == {"🤮": 2}  # shown either way
    updates = await bot.get_updates(timeout=0, allowed_updates=REACTIONS)
    assert {u.message_reaction.chat.id for u in updates} == {admin} and len(updates) == 2


async def test_anonymous_reactions_come_as_counts(sb: SandboxServer, bot: Bot) -> None:
    ann = sb.user("Ann")
    sent = await bot.send_message(ann["id"], "a sample")
    message = sb.message(ann["id"], sent.message_id)
    sb.react_anonymously(message, {"👍": 2, "🎉": 5, "👎": 0})
    (update,) = await bot.get_updates(timeout=0, allowed_updates=REACTIONS)
    counted = update.message_reaction_count
    assert counted is not None and counted.message_id == sent.message_id
    assert [(c.type, c.total_count) for c in counted.reactions] == [
        (ReactionTypeEmoji("🎉"), 5),
        (ReactionTypeEmoji("👍"), 2),
    ]


async def test_the_page_toggles_a_members_reaction(sb: SandboxServer, bot: Bot) -> None:
    ann, bo = sb.user("Ann"), sb.user("Bo")
    sent = await bot.send_message(ann["id"], "a sample")
    where = {"chat_id": ann["id"], "message_id": sent.message_id}
    async with aiohttp.ClientSession() as http:

        async def click(user: dict[str, object], emoji: str) -> int:
            body = {**where, "user_id": user["id"], "emoji": emoji}
            async with http.post(f"{sb.url}/sandbox/react", json=body) as resp:
                return resp.status

        assert await click(ann, "👍") == 200
        assert sb.reactions(ann["id"], sent.message_id) == {"👍": 1}
        assert await click(ann, "🔥") == 200  # replaces, as in Telegram without Premium
        assert sb.reactions(ann["id"], sent.message_id) == {"🔥": 1}
        async with http.get(f"{sb.url}/sandbox/state") as resp:
            chat = next(c for c in (await resp.json())["chats"] if c["id"] == ann["id"])
        assert chat["messages"][-1]["reactions"] == [{"emoji": "🔥", "count": 1, "users": [ann["id"]]}]
        assert await click(ann, "🔥") == 200  # taken back
        assert sb.reactions(ann["id"], sent.message_id) == {}
        assert await click(bo, "👍") == 400  # not in Ann's chat
    updates = await bot.get_updates(timeout=0, allowed_updates=REACTIONS)
    assert [len(u.message_reaction.new_reaction) for u in updates] == [1, 1, 0]
