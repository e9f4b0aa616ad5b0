"""The sandbox page in a real browser: Debian's Chromium driven by Playwright.

`sandbox` is a real sandbox server on a free loopback port with the demo chats; `bot` runs the
real bot against it; `page_at` opens the page at desktop or phone size. `shot` saves a
screenshot under test-artifacts/screenshots/ so a person can look at what the test saw.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright
from telegram.ext import Application

from migrations import upgrade
from sandbox.server import demo_world
from sandbox.testing import SandboxServer
from tests.e2e.conftest import make_settings, model_dir, start_app, stop_app

__all__ = ["model_dir"]  # the e2e models fixture, shared

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
ShotFn = Callable[[Page, str], Awaitable[Path]]
PageAt = Callable[[str, str], Awaitable[Page]]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium from the system (no Playwright browser download)."""
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            await chromium.close()


async def start_sandbox(port: int = 0) -> SandboxServer:
    """A sandbox with the demo world (Ann, Bo, Mei and the Book club), started."""
    sb = SandboxServer(port=port)
    demo_world(sb.sandbox)
    return await sb.__aenter__()


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    """The sandbox server, as `lstmbot sandbox` starts it (demo world included)."""
    sb = await start_sandbox()
    try:
        yield sb
    finally:
        await sb.__aexit__()


@pytest.fixture
async def bot(sandbox: SandboxServer, model_dir: Path, tmp_path: Path) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    """The real bot polling the sandbox."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"
    await asyncio.to_thread(upgrade, url)
    app = await start_app(make_settings(sandbox, url, model_dir), model_dir)
    try:
        yield app
    finally:
        await stop_app(app)


@pytest.fixture
async def page_at(browser: Browser) -> AsyncIterator[PageAt]:
    """Open a URL in a fresh page of the named size ("desktop" or "phone")."""
    contexts = []

    async def open_page(url: str, size: str) -> Page:
        width, height = SIZES[size]
        context = await browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = await context.new_page()
        await page.goto(url)
        if url != "about:blank":
            await page.wait_for_selector("#chats button")  # the first state has arrived
        return page

    yield open_page
    for context in contexts:
        await context.close()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> ShotFn:
    """Save a screenshot named after the test (and a label)."""

    async def take(page: Page, label: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.]+", "-", f"{request.node.name}-{label}").strip("-")
        path = SCREENSHOTS / f"{name}.png"
        await page.screenshot(path=str(path))
        return path

    return take


async def layout(page: Page) -> dict[str, Any]:
    """Page and viewport sizes, and the boxes of the parts a person must see."""
    result: dict[str, Any] = await page.evaluate(
        """() => {
          const box = (sel) => { const r = document.querySelector(sel).getBoundingClientRect();
            return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, height: r.height}; };
          return {
            scrollWidth: document.documentElement.scrollWidth,
            scrollHeight: document.documentElement.scrollHeight,
            width: window.innerWidth, height: window.innerHeight,
            header: box("header"), composer: box("#composer"),
            send: box("#composer button[type=submit]"), input: box("#text"),
          };
        }"""
    )
    return result
