"""Webhook delivery like Telegram's: the secret header, at most max_connections open, retries."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from telegram import Bot

from sandbox.testing import SandboxServer


class Receiver:
    """A webhook endpoint that records what arrives and fails on request."""

    def __init__(self) -> None:
        self.seen: Counter[int] = Counter()
        self.answered: list[int] = []
        self.secrets: set[str | None] = set()
        self.open = 0
        self.most_open = 0
        self.fail_first: dict[int, int] = {}  # text number -> 5xx answers before a 200
        self.hang_first: set[int] = set()  # text numbers whose first request never answers in time

    async def handle(self, request: web.Request) -> web.Response:
        update = await request.json()
        number = int(update["message"]["text"])
        self.secrets.add(request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        self.seen[number] += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await asyncio.sleep(0.05)  # some work, so requests overlap
            if number in self.hang_first and self.seen[number] == 1:
                await asyncio.sleep(5)
            if self.fail_first.get(number, 0) >= self.seen[number]:
                return web.Response(status=502)
            self.answered.append(number)
            return web.Response(status=200)
        finally:
            self.open -= 1


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield rec, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


async def test_every_update_arrives_once_answered_within_max_connections(
    receiver: tuple[Receiver, str],
) -> None:
    rec, url = receiver
    rec.fail_first = {3: 2, 7: 1}
    rec.hang_first = {11}
    async with SandboxServer() as sb:
        sb.sandbox.webhook.timeout_s = 1.0
        async with Bot(sb.token, base_url=sb.base_url) as bot:
            assert await bot.set_webhook(url, secret_token="s3cret", max_connections=4)
            info = await bot.get_webhook_info()
            assert info.max_connections == 4
        ann = sb.user("Ann")
        for number in range(20):
            sb.send(ann, ann["id"], str(number))
        await sb.wait_until(lambda: sb.pending_updates() == 0, timeout=20, what="every update delivered")
    assert sorted(rec.answered) == list(range(20)), "each update answered exactly once"
    assert rec.seen[3] == 3 and rec.seen[7] == 2 and rec.seen[11] == 2, "failed ones were retried"
    assert rec.secrets == {"s3cret"}
    assert 1 < rec.most_open <= 4
    log = sb.sandbox.webhook.log
    assert log.delivered == 20 and log.failures == 4 and log.attempts == 24
