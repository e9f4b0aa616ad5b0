"""Inline keyboards on the web page are laid out as Telegram does: one line per button."""

from __future__ import annotations

from typing import Any

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup

from sandbox.testing import SandboxServer
from tests.browser.conftest import PageAt, ShotFn

pytestmark = pytest.mark.slow
LABELS = ["👍 0", "👎 0", "🔁 再来", "🌐 公开", "🆚 对决"]
# A Chinese sample's keyboard: ratings, then 🔁 / 🌐 / 🆚; and all five in one row (the older layout).
KEYBOARDS = {"two-rows": [LABELS[:2], LABELS[2:]], "one-row": [LABELS]}

BUTTONS_JS = """() => Array.from(document.querySelectorAll('.msg .kb .row')).map((row) =>
  Array.from(row.querySelectorAll('button')).map((b) => {
    const range = document.createRange();
    range.selectNodeContents(b);
    const tops = new Set(Array.from(range.getClientRects()).map((r) => Math.round(r.top)));
    const first = document.createRange();  // the label's first character (the emoji)
    first.setStart(b.firstChild, 0);
    first.setEnd(b.firstChild, 2);
    const style = getComputedStyle(b);
    const inner = b.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const r = b.getBoundingClientRect(), bubble = b.closest('.msg').getBoundingClientRect();
    return {text: b.textContent, lines: tops.size, inner: inner,
            emoji: first.getBoundingClientRect().width, width: r.width,
            inside: r.left >= bubble.left - 0.5 && r.right <= bubble.right + 0.5};
  }))"""


@pytest.mark.parametrize("keyboard", KEYBOARDS)
@pytest.mark.parametrize("text", ["春天来了", "春天来了，花开了，" * 12])
async def test_a_chinese_sample_keyboard_fits_a_390px_screen_one_line_per_button(
    sandbox: SandboxServer, page_at: PageAt, shot: ShotFn, text: str, keyboard: str
) -> None:
    rows_sent = KEYBOARDS[keyboard]
    mei = next(u for u in sandbox.sandbox.state.users.values() if u["first_name"] == "Mei")
    buttons = [[InlineKeyboardButton(label, callback_data=label) for label in row] for row in rows_sent]
    async with Bot(sandbox.token, base_url=sandbox.base_url) as bot:
        await bot.send_message(mei["id"], text, reply_markup=InlineKeyboardMarkup(buttons))
    page = await page_at(sandbox.url, "phone")
    await page.select_option("#user", str(mei["id"]))  # Mei's private chat is her first
    await page.wait_for_selector(".msg .kb button")
    await shot(page, "keyboard")
    rows: list[list[dict[str, Any]]] = await page.evaluate(BUTTONS_JS)
    assert [[b["text"] for b in row] for row in rows] == rows_sent
    for row in rows:
        for button in row:
            assert button["lines"] == 1, f"{button['text']!r} wraps: {button}"
            assert button["inside"], f"{button['text']!r} spills out of its bubble: {button}"
            # A label shows at least its emoji: the space inside the button is wider than it.
            assert button["inner"] >= button["emoji"] > 0, f"{button['text']!r} shows no label: {button}"
        widths = [b["width"] for b in row]
        assert max(widths) - min(widths) <= 1, f"a row's buttons do not share its width equally: {row}"
