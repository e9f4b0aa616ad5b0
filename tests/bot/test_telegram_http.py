"""The aiohttp Bot API client: real requests to the sandbox and to misbehaving servers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import NetworkError, TimedOut

from bot.calls import certainly_not_sent
from bot.telegram_http import AiohttpRequest
from sandbox.testing import SandboxServer

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201a5b1d6a40000000049454e44ae426082"
)


async def test_messages_keyboards_and_photos_reach_the_sandbox() -> None:
    async with SandboxServer() as sb:
        user = sb.user("Ann")
        bot = Bot(sb.token, base_url=sb.base_url, request=AiohttpRequest())
        async with bot:
            keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("👍 1", callback_data="r:1:1")]])
            sent = await bot.send_message(
                user["id"], "héllo <b>there</b>", parse_mode="HTML", reply_markup=keyboard
            )
            photo = await bot.send_photo(user["id"], PNG, caption="a chart")
        (text, picture) = sb.bot_messages(user["id"])
        assert text["text"] == "héllo there" and sent.message_id == text["message_id"]
        assert text["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "r:1:1"
        assert picture["caption"] == "a chart" and photo.photo


async def test_a_client_can_be_shut_down_and_started_again() -> None:
    async with SandboxServer() as sb:
        request = AiohttpRequest()
        with pytest.raises(NetworkError, match="not initialized"):
            await request.post(f"{sb.base_url}{sb.token}/getMe")
        for _ in range(2):
            async with Bot(sb.token, base_url=sb.base_url, request=request) as bot:
                assert (await bot.get_me()).username == "lstm_test_bot"


@contextlib.asynccontextmanager
async def started(request: AiohttpRequest) -> AsyncIterator[AiohttpRequest]:
    """The client, initialized, shut down afterwards."""
    await request.initialize()
    try:
        yield request
    finally:
        await request.shutdown()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serving(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/bot"
    finally:
        await runner.cleanup()


async def test_a_refused_connection_certainly_sent_nothing() -> None:
    async with started(AiohttpRequest()) as request:
        with pytest.raises(NetworkError) as failed:
            await request.post(f"http://127.0.0.1:{free_port()}/bot1:x/sendMessage")
    assert not isinstance(failed.value, TimedOut)
    assert certainly_not_sent(failed.value)


async def test_a_slow_answer_may_have_been_sent_but_a_full_pool_certainly_not() -> None:
    got: list[str] = []

    async def slow(request: web.Request) -> web.Response:
        got.append(request.path)
        await asyncio.sleep(1.0)
        return web.json_response({"ok": True, "result": True})

    async for url in serving(slow):
        async with started(
            AiohttpRequest(connection_pool_size=1, read_timeout=0.2, pool_timeout=0.1)
        ) as request:
            reading = asyncio.ensure_future(request.post(f"{url}1:x/sendMessage"))
            await asyncio.sleep(0.05)  # the only connection is busy now
            with pytest.raises(TimedOut) as pooled:
                await request.post(f"{url}1:x/sendMessage")
            with pytest.raises(TimedOut) as read:
                await reading
    assert certainly_not_sent(pooled.value)  # never left: no connection was free
    assert not certainly_not_sent(read.value)  # written, then no answer in time
    assert got == ["/bot1:x/sendMessage"]


async def test_a_connection_dropped_after_the_request_may_have_been_sent() -> None:
    async def drops(request: web.Request) -> web.StreamResponse:
        await request.read()
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    async for url in serving(drops):
        async with started(AiohttpRequest()) as request:
            with pytest.raises(NetworkError) as failed:
                await request.post(f"{url}1:x/sendMessage")
    assert not certainly_not_sent(failed.value)
