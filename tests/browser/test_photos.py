"""Photos on the web page: a photo the bot sends shows as the picture, with its caption."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from playwright.async_api import expect
from telegram import Bot

from sandbox.testing import SandboxServer
from tests.browser.conftest import PageAt, ShotFn

pytestmark = pytest.mark.slow


def chart_png(width: int, height: int) -> bytes:
    """A PNG the size of the leaderboard chart."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (43, 123, 185)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_a_photo_from_the_bot_shows_as_a_loaded_image_with_its_caption(
    sandbox: SandboxServer, page_at: PageAt, shot: ShotFn, size: str
) -> None:
    ann = next(u for u in sandbox.sandbox.state.users.values() if u["first_name"] == "Ann")
    page = await page_at(sandbox.url, size)  # Ann's private chat is the one shown first
    async with Bot(sandbox.token, base_url=sandbox.base_url) as bot:
        await bot.send_photo(ann["id"], chart_png(990, 528), caption="<b>Duels</b> so far", parse_mode="HTML")
    message = page.locator(".msg", has=page.locator("img"))
    await expect(message).to_have_count(1)
    await expect(message).to_contain_text("Duels so far")
    await expect(message.locator("b")).to_have_text("Duels")  # the caption's entities are kept
    await expect(message).not_to_contain_text("[photo")
    img = message.locator("img")
    await expect(img).to_have_js_property("complete", True)
    natural = await img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert natural == [990, 528]
    await shot(page, "photo")
    fits = await img.evaluate(
        "i => { const r = i.getBoundingClientRect(), b = i.closest('.msg').getBoundingClientRect();"
        " return r.width > 100 && r.left >= b.left - 0.5 && r.right <= b.right + 0.5; }"
    )
    assert fits, "the picture is missing or spills out of its bubble"
