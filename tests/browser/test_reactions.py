"""The reaction picker on the web page: a click reacts, the bot counts it as a rating and the
sample's 👍/👎 buttons follow; a second click takes it back."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect
from telegram.ext import Application

from bot.db import repository as repo
from bot.services import SERVICES_KEY
from sandbox.testing import SandboxServer
from tests.browser.conftest import PageAt, ShotFn

pytestmark = pytest.mark.slow
ANN = 1001  # the demo world's first person; her private chat has the same id

FITS_JS = """() => Array.from(document.querySelectorAll('.msg .reactions')).every((row) => {
  const r = row.getBoundingClientRect(), bubble = row.closest('.msg').getBoundingClientRect();
  return r.left >= bubble.left - 0.5 && r.right <= bubble.right + 0.5;
}) && document.documentElement.scrollWidth <= window.innerWidth"""


async def recorded(app: Application, message_id: int) -> None:  # type: ignore[type-arg]
    """Wait until the bot has recorded which message its sample is (just after sending it)."""
    db = app.bot_data[SERVICES_KEY].db
    for _ in range(100):
        shown = await db.run(
            lambda s: repo.samples_of_message(s, chat_telegram_id=ANN, message_id=message_id), write=False
        )
        if shown:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"message {message_id} not recorded as a sample")


async def test_a_reaction_clicked_on_the_page_rates_the_sample(
    sandbox: SandboxServer,
    bot: Application,  # type: ignore[type-arg]
    page_at: PageAt,
    shot: ShotFn,
) -> None:
    page = await page_at(sandbox.url, "phone")
    await page.fill("#text", "the will to truth")
    await page.click("#composer button[type=submit]")
    sample = page.locator(".msg", has=page.locator(".kb"))
    await expect(sample).to_have_count(1, timeout=15000)
    await recorded(bot, max(m["message_id"] for m in sandbox.bot_messages(ANN)))
    picker = sample.locator(".reactions button")
    await expect(picker).to_have_count(6)
    assert await page.evaluate(FITS_JS), "the reaction row spills out of its bubble or the page"
    keyboard = sample.locator(".kb button")

    await sample.locator(".reactions button[title='react 👍']").click()
    await expect(keyboard.nth(0)).to_have_text("👍 1", timeout=10000)
    liked = sample.locator(".reactions button[title='react 👍']")
    await expect(liked).to_have_text("👍 1")
    await expect(liked).to_have_class("chosen")
    await shot(page, "liked")

    await sample.locator(".reactions button[title='react 💩']").click()  # replaces the 👍
    await expect(keyboard.nth(1)).to_have_text("👎 1", timeout=10000)
    await expect(keyboard.nth(0)).to_have_text("👍 0")
    await expect(liked).to_have_text("👍")

    await sample.locator(".reactions button[title='react 💩']").click()  # taken back
    await expect(keyboard.nth(1)).to_have_text("👎 0", timeout=10000)
    await expect(sample.locator(".reactions button.chosen")).to_have_count(0)
    await shot(page, "withdrawn")
