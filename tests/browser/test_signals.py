"""What the page signals: "typing…" only until the reply, toasts only when new, a favicon."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Response, expect

from sandbox.testing import SandboxServer
from tests.browser.conftest import PageAt, ShotFn

pytestmark = pytest.mark.slow
ANN = 1001  # the demo world's first person; her private chat has the same id


async def as_bot(sb: SandboxServer, method: str, **params: Any) -> Any:
    """Call the sandbox's Bot API the way the bot does."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{sb.base_url}{sb.token}/{method}", json=params) as r,
    ):
        body = await r.json()
    assert body["ok"], body
    return body["result"]


async def test_typing_disappears_as_soon_as_the_bot_answers(
    sandbox: SandboxServer, page_at: PageAt, shot: ShotFn
) -> None:
    page = await page_at(sandbox.url, "desktop")
    typing = page.locator("#typing")
    await as_bot(sandbox, "sendChatAction", chat_id=ANN, action="typing")
    await expect(typing).to_be_visible(timeout=3000)
    await shot(page, "typing")
    await as_bot(sandbox, "sendMessage", chat_id=ANN, text="here is your continuation")
    await expect(page.locator(".msg")).to_contain_text("here is your continuation")
    await expect(typing).to_be_hidden(timeout=1000)  # not the 5 s a chat action may last
    await shot(page, "answered")


async def test_typing_ends_after_five_seconds_without_a_reply(
    sandbox: SandboxServer, page_at: PageAt
) -> None:
    page = await page_at(sandbox.url, "desktop")
    await as_bot(sandbox, "sendChatAction", chat_id=ANN, action="typing")
    await expect(page.locator("#typing")).to_be_visible(timeout=3000)
    await expect(page.locator("#typing")).to_be_hidden(timeout=7000)


async def test_a_reload_does_not_replay_old_toasts(
    sandbox: SandboxServer, page_at: PageAt, shot: ShotFn
) -> None:
    page = await page_at(sandbox.url, "desktop")
    keyboard = {"inline_keyboard": [[{"text": "Rate", "callback_data": "rate"}]]}
    message = await as_bot(
        sandbox, "sendMessage", chat_id=ANN, text="rate me", reply_markup=json.dumps(keyboard)
    )
    await page.get_by_role("button", name="Rate", exact=True).click()
    (update,) = await as_bot(sandbox, "getUpdates", allowed_updates=["callback_query"])
    assert update["callback_query"]["message"]["message_id"] == message["message_id"]
    await as_bot(
        sandbox,
        "answerCallbackQuery",
        callback_query_id=update["callback_query"]["id"],
        text="Thanks for rating!",
        show_alert=True,
    )
    toast = page.locator("#toast")
    await expect(toast).to_have_text("Thanks for rating!")
    await expect(toast).to_be_visible()
    await shot(page, "toast")

    await page.reload()
    await page.wait_for_selector("#chats button")
    await page.wait_for_timeout(300)
    assert await toast.is_hidden(), "the old toast was shown again after the reload"
    await shot(page, "reloaded")


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_the_page_loads_without_a_failed_request(
    sandbox: SandboxServer, page_at: PageAt, shot: ShotFn, size: str
) -> None:
    failed: list[str] = []

    def note(response: Response) -> None:
        if response.status >= 400:
            failed.append(f"{response.status} {response.url}")

    page = await page_at("about:blank", size)
    page.on("response", note)
    await page.goto(sandbox.url)
    await page.wait_for_selector("#chats button")
    await page.wait_for_timeout(500)  # the browser asks for the icon after the page itself
    assert failed == []
    icon = await page.evaluate("() => document.querySelector('link[rel~=icon]')?.href ?? null")
    assert icon, "the page declares no icon"
    async with aiohttp.ClientSession() as http, http.get(icon) as r:
        assert r.status == 200 and r.content_type == "image/svg+xml"
    # Browsers that ignore the link ask for /favicon.ico; it is there too.
    async with aiohttp.ClientSession() as http, http.get(f"{sandbox.url}/favicon.ico") as r:
        assert r.status == 200
    await shot(page, "loaded")
