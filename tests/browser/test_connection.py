"""When the sandbox server goes away the page says so, keeps what was typed, and reconnects."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.conftest import PageAt, ShotFn, start_sandbox

pytestmark = pytest.mark.slow


async def test_a_message_typed_while_the_server_is_down_is_kept_and_the_page_reconnects(
    page_at: PageAt, shot: ShotFn
) -> None:
    sb = await start_sandbox()
    port = sb.port
    page = await page_at(sb.url, "desktop")
    await sb.__aexit__()  # the server goes away under the open page

    await page.fill("#text", "hello while offline")
    await page.click("#composer button[type=submit]")
    banner = page.locator("#offline")
    await expect(banner).to_be_visible(timeout=5000)
    await expect(page.locator("#text")).to_have_value("hello while offline")
    await shot(page, "disconnected")

    sb = await start_sandbox(port)  # back on the same port, with a fresh state
    try:
        await expect(banner).to_be_hidden(timeout=10000)
        await page.click("#composer button[type=submit]")
        ann = sb.sandbox.state.users[1001]
        await sb.wait_until(
            lambda: [
                m
                for m in sb.sandbox.state.chats[ann["id"]].messages.values()
                if m.get("text") == "hello while offline"
            ],
            timeout=5,
            what="the kept message to arrive",
        )
        await expect(page.locator("#text")).to_have_value("")
        await expect(page.locator(".msg.mine")).to_contain_text("hello while offline")
        await shot(page, "reconnected")
    finally:
        await sb.__aexit__()
