"""The webhook server (bot/webhook.py): 2xx only after the update was handled, once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from bot.webhook import SECRET_HEADER, WEBHOOK_PATH, webhook_app
from sandbox.testing import SandboxServer

UPDATE: dict[str, Any] = {
    "update_id": 42,
    "message": {
        "message_id": 1,
        "date": 0,
        "chat": {"id": 7, "type": "private"},
        "from": {"id": 7, "is_bot": False, "first_name": "Ann"},
        "text": "truth",
    },
}


async def _app(sb: SandboxServer, handled: list[tuple[int, float]]) -> Application:  # type: ignore[type-arg]
    async def slow(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await asyncio.sleep(0.5)
        handled.append((update.update_id, time.monotonic()))

    app = ApplicationBuilder().token(sb.token).base_url(sb.base_url).concurrent_updates(True).build()
    app.add_handler(TypeHandler(Update, slow))
    await app.initialize()
    return app


async def test_answers_after_handling_and_a_repost_in_flight_is_handled_once() -> None:
    handled: list[tuple[int, float]] = []
    async with SandboxServer() as sb:
        app = await _app(sb, handled)
        try:
            async with TestClient(TestServer(webhook_app(app, "s3cret"))) as client:
                headers = {SECRET_HEADER: "s3cret"}
                first = asyncio.create_task(client.post(WEBHOOK_PATH, json=UPDATE, headers=headers))
                await asyncio.sleep(0.1)  # Telegram gave up on the first post and posts it again
                second = await client.post(WEBHOOK_PATH, json=UPDATE, headers=headers)
                answered = time.monotonic()
                assert second.status == 200 and (await first).status == 200
        finally:
            await app.shutdown()
    assert [update_id for update_id, _ in handled] == [42]  # handled once, not twice
    assert handled[0][1] <= answered  # and answered only after that


async def test_a_wrong_secret_or_a_non_update_changes_nothing() -> None:
    handled: list[tuple[int, float]] = []
    async with SandboxServer() as sb:
        app = await _app(sb, handled)
        try:
            async with TestClient(TestServer(webhook_app(app, "s3cret"))) as client:
                forged = await client.post(WEBHOOK_PATH, json=UPDATE, headers={SECRET_HEADER: "guess"})
                garbage = await client.post(
                    WEBHOOK_PATH, data=b"{not json", headers={SECRET_HEADER: "s3cret"}
                )
                starting = await client.get("/healthz")  # no services yet: not ready for traffic
                assert (forged.status, garbage.status, starting.status) == (403, 400, 503)
        finally:
            await app.shutdown()
    assert handled == []
