"""/acrostic on the web page (issue 27): typed in the composer, answered with a poem whose lines
start with the heads, a line each; bad heads get the usage message and no poem."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect
from telegram.ext import Application

from sandbox.testing import SandboxServer
from tests.browser.conftest import PageAt, ShotFn
from tests.conftest import BundleFactory
from tests.e2e.conftest import with_poems

pytestmark = pytest.mark.slow
ANN = 1001  # the demo world's first person; her private chat has the same id
USAGE = "1 to 8 Chinese characters"


@pytest.fixture
def model_dir(tmp_path: Path, make_bundle: BundleFactory, poem_bundle: Path) -> Path:
    """The usual char model (the default) beside a poem model."""
    return with_poems(tmp_path, make_bundle, poem_bundle)


async def test_an_acrostic_typed_on_the_page_comes_back_a_line_a_head(
    sandbox: SandboxServer,
    bot: Application,  # type: ignore[type-arg]
    page_at: PageAt,
    shot: ShotFn,
) -> None:
    page = await page_at(sandbox.url, "phone")
    await page.fill("#text", "/acrostic 新年快乐 7")
    await page.click("#composer button[type=submit]")
    poem = page.locator(".msg", has_text="新年快乐」· 7 言").or_(
        page.locator(".msg", has_text="an acrostic of 新年快乐")
    )
    await expect(poem).to_have_count(1, timeout=15000)
    (sent,) = [m for m in sandbox.bot_messages(ANN) if "新年快乐" in str(m.get("text", ""))]
    lines = str(sent["text"]).split("\n\n")[0].split("\n")
    assert [line[0] for line in lines] == list("新年快乐") and all(len(line) == 8 for line in lines)
    for head in "新年快乐":  # each head in bold on the page, as the bot sent it
        await expect(poem.locator("b", has_text=head)).to_have_count(1)
    await shot(page, "poem")

    for refused, bad in enumerate(("/acrostic hello 5", "/acrostic 一二三四五六七八九"), start=1):
        before = len(sandbox.bot_messages(ANN))
        await page.fill("#text", bad)
        await page.click("#composer button[type=submit]")
        await expect(page.locator(".msg", has_text=USAGE)).to_have_count(refused, timeout=15000)
        assert len(sandbox.bot_messages(ANN)) == before + 1  # the usage message, and no poem
    await shot(page, "refused")
