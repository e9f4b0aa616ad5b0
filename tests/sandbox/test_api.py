"""The sandbox speaks the Bot API: real python-telegram-bot calls against it."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Conflict, InvalidToken, RetryAfter
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from sandbox.testing import SandboxServer


async def test_get_me_and_wrong_token(sb: SandboxServer, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.username == "lstm_test_bot" and me.is_bot
    with pytest.raises(InvalidToken):
        async with Bot("1:wrongwrongwrongwrongwrongwrongwrong", base_url=sb.base_url) as other:
            await other.get_me()


async def test_send_edit_and_keyboard(sb: SandboxServer, bot: Bot) -> None:
    ann = sb.user("Ann")
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("👍 0", callback_data="r:1:+")]])
    sent = await bot.send_message(
        ann["id"], "<b>bold</b> &amp; plain", parse_mode=ParseMode.HTML, reply_markup=markup
    )
    assert sent.text == "bold & plain" and sent.entities[0].type == "bold" and sent.entities[0].length == 4
    assert sent.reply_markup == markup
    edited = await bot.edit_message_text(
        "*new* text", ann["id"], sent.message_id, parse_mode=ParseMode.MARKDOWN_V2
    )
    assert edited.text == "new text" and sb.message(ann["id"], sent.message_id)["text"] == "new text"
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_text(
            "*new* text", ann["id"], sent.message_id, parse_mode=ParseMode.MARKDOWN_V2
        )
    new_markup = InlineKeyboardMarkup([[InlineKeyboardButton("👍 1", callback_data="r:1:+")]])
    await bot.edit_message_reply_markup(ann["id"], sent.message_id, reply_markup=new_markup)
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_reply_markup(ann["id"], sent.message_id, reply_markup=new_markup)
    assert await bot.delete_message(ann["id"], sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(ann["id"], sent.message_id)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": ""}, "text is empty"),
        ({"text": "x" * 4097}, "message is too long"),
        ({"text": "<b>open", "parse_mode": "HTML"}, "can't parse entities"),
        ({"text": "<blink>x</blink>", "parse_mode": "HTML"}, "can't parse entities"),
        ({"text": "a.b", "parse_mode": "MarkdownV2"}, "reserved"),
        (
            {
                "text": "x",
                "reply_markup": InlineKeyboardMarkup([[InlineKeyboardButton("b", callback_data="x" * 65)]]),
            },
            "BUTTON_DATA_INVALID",
        ),
    ],
)
async def test_refusals_like_telegram(
    sb: SandboxServer, bot: Bot, kwargs: dict[str, object], message: str
) -> None:
    ann = sb.user("Ann")
    with pytest.raises(BadRequest, match=rf"(?i){message}"):
        await bot.send_message(ann["id"], **kwargs)  # type: ignore[arg-type]


async def test_unknown_chat_and_unknown_method(sb: SandboxServer, bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(424242, "hi")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sb.base_url}{sb.token}/sendTelepathy") as resp:
            assert resp.status == 404 and (await resp.json())["description"] == "Not Found"
        # JSON bodies work as well as forms.
        ann = sb.user("Bo")
        async with http.post(
            f"{sb.base_url}{sb.token}/sendMessage", json={"chat_id": ann["id"], "text": "hey"}
        ) as resp:
            assert (await resp.json())["result"]["text"] == "hey"


async def test_updates_offsets_and_callback_answers(sb: SandboxServer, bot: Bot) -> None:
    ann = sb.user("Ann")
    sb.send(ann, ann["id"], "/start")
    sb.send(ann, ann["id"], "hello")
    first = await bot.get_updates(timeout=0)
    assert [u.message.text for u in first if u.message] == ["/start", "hello"]
    assert first[0].message and first[0].message.entities[0].type == "bot_command"
    confirmed = await bot.get_updates(offset=first[-1].update_id + 1, timeout=0)
    assert confirmed == () and sb.pending_updates() == 0
    sent = await bot.send_message(
        ann["id"],
        "rate",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("up", callback_data="up")]]),
    )
    query_id = sb.press(ann, sent.to_dict(), button="up")
    (update,) = await bot.get_updates(timeout=1)
    assert update.callback_query and update.callback_query.data == "up"
    assert await bot.answer_callback_query(query_id, text="thanks")
    assert sb.answers()[query_id]["text"] == "thanks"
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query_id, text="again")


async def test_long_polling_waits_for_an_update(sb: SandboxServer, bot: Bot) -> None:
    ann = sb.user("Ann")

    async def later() -> None:
        await asyncio.sleep(0.3)
        sb.send(ann, ann["id"], "late")

    task = asyncio.create_task(later())
    updates = await bot.get_updates(timeout=5)
    await task
    assert updates and updates[0].message and updates[0].message.text == "late"


async def test_commands_actions_chats_and_members(sb: SandboxServer, bot: Bot) -> None:
    ann, bo = sb.user("Ann"), sb.user("Bo")
    group = sb.group("club", [ann, bo], admins=[ann])
    await bot.set_my_commands([BotCommand("gen", "continue a seed")])
    assert [c.command for c in await bot.get_my_commands()] == ["gen"] and sb.commands()[0][
        "command"
    ] == "gen"
    assert await bot.send_chat_action(group, ChatAction.TYPING) and sb.chat_actions(group) == ["typing"]
    chat = await bot.get_chat(group)
    assert chat.title == "club" and chat.type == "supergroup"
    assert (await bot.get_chat_member(group, bo["id"])).status == "member"
    admins = await bot.get_chat_administrators(group)
    assert [a.user.id for a in admins] == [ann["id"]] and admins[0].status == "creator"
    sb.send(bo, group, "/gen@lstm_test_bot hi @lstm_test_bot")
    (update,) = await bot.get_updates(timeout=0)
    assert update.message and [e.type for e in update.message.entities] == ["bot_command", "mention"]


async def test_faults_429_500_and_webhook_conflict(sb: SandboxServer, bot: Bot) -> None:
    ann = sb.user("Ann")
    sb.faults.add("sendMessage", "429", retry_after=3)
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(ann["id"], "x")
    assert info.value.retry_after == 3  # type: ignore[comparison-overlap]
    sb.faults.add("sendMessage", "500")
    with pytest.raises(Exception, match="Internal Server Error"):
        await bot.send_message(ann["id"], "x")
    assert (await bot.send_message(ann["id"], "ok")).text == "ok"  # faults are used up
    await bot.set_webhook("http://127.0.0.1:9/hook", secret_token="s3cret")
    with pytest.raises(Conflict):
        await bot.get_updates(timeout=0)
    assert (await bot.get_webhook_info()).url == "http://127.0.0.1:9/hook"
    await bot.delete_webhook()
    assert await bot.get_updates(timeout=0) == ()


async def test_webhook_delivery_carries_the_secret(sb: SandboxServer, bot: Bot) -> None:
    from aiohttp import web

    received: list[tuple[str | None, dict[str, object]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        ann = sb.user("Ann")
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        sb.send(ann, ann["id"], "via webhook")
        await sb.wait_until(lambda: received, timeout=5)
        secret, body = received[0]
        assert secret == "s3cret" and json.dumps(body).find("via webhook") > 0
    finally:
        await bot.delete_webhook()
        await runner.cleanup()


async def test_a_real_application_polls_and_replies(sb: SandboxServer) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message
        await update.effective_message.reply_text(f"you said: {' '.join(context.args or [])}")

    app = ApplicationBuilder().token(sb.token).base_url(sb.base_url).build()
    app.add_handler(CommandHandler("echo", echo))
    ann = sb.user("Ann")
    async with app:
        await app.start()
        assert app.updater
        await app.updater.start_polling(poll_interval=0, timeout=1)
        sb.send(ann, ann["id"], "/echo hello world")
        (reply,) = await sb.wait_for_bot_messages(ann["id"])
        await app.updater.stop()
        await app.stop()
    assert reply["text"] == "you said: hello world"


async def test_the_web_page_endpoints(sb: SandboxServer, bot: Bot) -> None:
    ann = sb.user("Ann")
    async with aiohttp.ClientSession() as http:
        async with http.get(sb.url + "/") as resp:
            assert resp.status == 200 and "lstmbot sandbox" in await resp.text()
        async with http.post(
            sb.url + "/sandbox/send", json={"user_id": ann["id"], "chat_id": ann["id"], "text": "hi"}
        ) as resp:
            assert resp.status == 200
        (update,) = await bot.get_updates(timeout=0)
        assert update.message and update.message.text == "hi"
        sent = await bot.send_message(
            ann["id"],
            "pick",
            reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data="A")]]),
        )
        press = {"user_id": ann["id"], "chat_id": ann["id"], "message_id": sent.message_id, "data": "A"}
        async with http.post(sb.url + "/sandbox/press", json=press) as resp:
            assert resp.status == 200
        (pressed,) = await bot.get_updates(offset=update.update_id + 1, timeout=0)
        assert pressed.callback_query and pressed.callback_query.data == "A"
        await bot.answer_callback_query(pressed.callback_query.id, text="done")
        await bot.send_chat_action(ann["id"], ChatAction.TYPING)
        async with http.get(sb.url + "/sandbox/state") as resp:
            state = await resp.json()
        chat = next(c for c in state["chats"] if c["id"] == ann["id"])
        assert chat["typing"] and [m["text"] for m in chat["messages"]] == ["hi", "pick"]
        assert state["toasts"][-1]["text"] == "done"
        async with http.post(
            sb.url + "/sandbox/send", json={"user_id": 5, "chat_id": ann["id"], "text": "x"}
        ) as resp:
            assert resp.status == 400  # not a member of that chat
