"""Inline mode on the web page: "@bot seed" in the composer lists the bot's results to pick."""

from __future__ import annotations

import pytest
from playwright.async_api import expect
from telegram.ext import Application

from sandbox.testing import SandboxServer
from tests.browser.conftest import PageAt, ShotFn

pytestmark = pytest.mark.slow


async def test_typing_at_bot_and_a_seed_offers_results_and_picking_one_posts_it(
    sandbox: SandboxServer,
    bot: Application,  # type: ignore[type-arg]
    page_at: PageAt,
    shot: ShotFn,
) -> None:
    page = await page_at(sandbox.url, "desktop")
    await page.fill("#text", f"@{sandbox.bot['username']} the will to truth")
    results = page.locator("#inline li")
    await expect(results).to_have_count(3, timeout=15000)
    await expect(results.nth(1)).to_contain_text("T=0.5")
    await shot(page, "results")
    await results.nth(2).click()
    posted = page.locator(".msg", has_text=f"via @{sandbox.bot['username']}")
    await expect(posted).to_contain_text("the will to truth")
    await expect(page.locator("#inline")).to_be_hidden()
    await expect(page.locator("#text")).to_have_value("")
    await shot(page, "posted")
