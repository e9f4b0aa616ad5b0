"""The page keeps its shape: long words wrap, long quotes are clipped, phones see the composer."""

from __future__ import annotations

import pytest
from telegram.ext import Application

from sandbox.testing import SandboxServer
from tests.browser.conftest import PageAt, ShotFn, layout

pytestmark = pytest.mark.slow
LONG_WORD = "x" * 3000


def inside(box: dict[str, float], width: int, height: int) -> bool:
    return box["left"] >= 0 and box["top"] >= 0 and box["right"] <= width and box["bottom"] <= height


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_a_long_word_and_a_long_quote_do_not_widen_the_page(
    sandbox: SandboxServer,
    bot: Application,  # type: ignore[type-arg]
    page_at: PageAt,
    shot: ShotFn,
    size: str,
) -> None:
    page = await page_at(sandbox.url, size)
    # In the Book club the bot quotes the message it answers: a 3000-character quote.
    await page.get_by_role("button", name="Book club").click()
    await page.fill("#text", f"/gen {LONG_WORD}")
    await page.click("#composer button[type=submit]")
    group = next(c for c in sandbox.sandbox.state.chats if c < 0)
    (reply,) = await sandbox.wait_for_bot_messages(group, timeout=30)
    assert reply["reply_to_message"]["text"].endswith(LONG_WORD)
    await page.wait_for_selector(".msg .quote")
    await shot(page, "after-long-word")
    box = await layout(page)
    assert box["scrollWidth"] <= box["width"], box
    assert inside(box["send"], box["width"], box["height"]), box
    quote = await page.eval_on_selector(
        ".msg .quote",
        "q => { const r = q.getBoundingClientRect(), b = q.closest('.msg').getBoundingClientRect();"
        " return r.right <= b.right + 0.5 && r.left >= b.left - 0.5; }",
    )
    assert quote, "the quote spills out of its bubble"


async def test_the_phone_layout_has_a_short_header_and_the_composer_on_screen(
    sandbox: SandboxServer, page_at: PageAt, shot: ShotFn
) -> None:
    page = await page_at(sandbox.url, "phone")
    await shot(page, "phone")
    box = await layout(page)
    assert box["header"]["height"] <= 80, box
    assert inside(box["composer"], box["width"], box["height"]), box
    assert box["scrollWidth"] <= box["width"], box
