"""The whole bot, end to end: real python-telegram-bot polling the sandbox over HTTP.

`harness` starts the sandbox, migrates a fresh database (SQLite, and PostgreSQL when
TEST_POSTGRES_URL is set), builds the Application exactly as `lstmbot run` does, and runs it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession
from telegram.ext import Application

from bot.app import ALLOWED_UPDATES, build_application
from bot.db.database import Database
from bot.generation import load_models
from bot.settings import Settings
from bot.webhook import webhook_app
from migrations import upgrade
from sandbox.testing import SandboxServer
from tests.conftest import BundleFactory

Json = dict[str, Any]
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")
WEBHOOK_RUNNER = "webhook_runner"
ADMIN_ID = 1001  # the sandbox's first user


@dataclass
class Harness:
    """A running bot and the sandbox it talks to."""

    sb: SandboxServer
    settings: Settings
    app: Application  # type: ignore[type-arg]
    db: Database
    restarts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    async def say(
        self,
        user: Json,
        text: str,
        *,
        chat: int | None = None,
        reply_to: int | None = None,
        timeout: float = 20.0,
    ) -> Json:
        """Send as `user` and return the bot's next message in that chat."""
        chat_id = chat if chat is not None else user["id"]
        before = len(self.sb.bot_messages(chat_id))
        self.sb.send(user, chat_id, text, reply_to=reply_to)
        (reply,) = await self.sb.wait_for_bot_messages(chat_id, after=before, timeout=timeout)
        return reply

    async def press(
        self, user: Json, message: Json, data: str | None = None, *, button: str | None = None
    ) -> Json:
        """Press a button and return how the bot answered the callback query."""
        query_id = self.sb.press(user, message, data, button=button)
        return await self.sb.wait_for_answer(query_id)

    async def query(self, work: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
        """Run a read in the bot's database."""
        return await self.db.run(work, write=False)

    async def quiet(self, chat_id: int, seconds: float = 0.6) -> int:
        """How many bot messages appear in a chat within `seconds` (for "ignored" checks)."""
        before = len(self.sb.bot_messages(chat_id))
        await asyncio.sleep(seconds)
        return len(self.sb.bot_messages(chat_id)) - before


async def start_app(settings: Settings, model_dir: Path, *, webhook_secret: str | None = None) -> Application:  # type: ignore[type-arg]
    """Build and start the Application the way `lstmbot run` does (post_init included).

    Polling by default; with `webhook_secret`, a webhook server on a free port instead (its
    port is left in bot_data["webhook_port"]).
    """
    app = build_application(settings, load_models(model_dir, settings.default_model, settings.models))
    await app.initialize()
    if app.post_init:
        await app.post_init(app)
    await app.start()
    assert app.updater is not None
    if webhook_secret is None:
        await app.updater.start_polling(poll_interval=0.0, timeout=1, allowed_updates=ALLOWED_UPDATES)
    else:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        app.bot_data["webhook_port"] = port
        # The server `lstmbot run` serves in webhook mode (2xx only after handling).
        runner = web.AppRunner(webhook_app(app, webhook_secret), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        app.bot_data[WEBHOOK_RUNNER] = runner
        await app.bot.set_webhook(
            f"http://127.0.0.1:{port}/telegram", secret_token=webhook_secret, allowed_updates=ALLOWED_UPDATES
        )
    return app


async def stop_app(app: Application) -> None:  # type: ignore[type-arg]
    """Stop polling and shut down cleanly (post_shutdown included)."""
    runner = app.bot_data.pop(WEBHOOK_RUNNER, None)
    if runner is not None:
        await runner.cleanup()
    if app.updater and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    if app.post_shutdown:
        await app.post_shutdown(app)
    await app.shutdown()


BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql", marks=pytest.mark.skipif(not POSTGRES_URL, reason="TEST_POSTGRES_URL is not set")
    ),
]


@pytest.fixture(scope="session")
def model_dir(
    tmp_path_factory: pytest.TempPathFactory, make_bundle: BundleFactory, word_bundle: Path
) -> Path:
    """Two character models and a Chinese word model, as MODEL_DIR."""
    folder = tmp_path_factory.mktemp("models")
    shutil.copytree(make_bundle(window=20), folder / "tiny-char")
    shutil.copytree(make_bundle(window=20, seed=1, lstm_units=(24,)), folder / "tiny-two")
    shutil.copytree(word_bundle, folder / "tiny-zh")
    return folder


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, migrated database: every end-to-end test runs on SQLite and on PostgreSQL."""
    backend = request.param
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"
        await asyncio.to_thread(upgrade, url)
        yield url
        return
    from bot.db.scratch import temporary_database

    assert POSTGRES_URL
    async with temporary_database(POSTGRES_URL, tag="e2e") as url:
        await asyncio.to_thread(upgrade, url)
        yield url


def make_settings(sb: SandboxServer, database_url: str, model_dir: Path, **overrides: Any) -> Settings:
    """Settings pointing the bot at the sandbox."""
    values: dict[str, Any] = {
        "telegram_token": sb.token,
        "telegram_api_base_url": sb.base_url,
        "database_url": database_url,
        "model_dir": model_dir,
        "default_model": "tiny-char",
        "admin_user_ids": frozenset({ADMIN_ID}),
        "rate_limit_per_minute": 1000,
        "max_queue": 256,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def bot_settings() -> dict[str, Any]:
    """Per-test setting overrides (a test may update this dict before using `harness`)."""
    return {}


@pytest.fixture
async def harness(database_url: str, model_dir: Path, bot_settings: dict[str, Any]) -> AsyncIterator[Harness]:
    """The running bot."""
    async with SandboxServer() as sb:
        settings = make_settings(sb, database_url, model_dir, **bot_settings)
        app = await start_app(settings, model_dir)
        db = Database.from_url(database_url)
        h = Harness(sb=sb, settings=settings, app=app, db=db)
        try:
            yield h
            # Every press in every end-to-end test got an answer (no spinner left running).
            await sb.wait_until(
                lambda: all(q["answered"] for q in sb.answers().values()),
                timeout=10,
                what="every callback query answered",
            )
        finally:
            await stop_app(h.app)
            await db.dispose()


def with_poems(tmp_path: Path, make_bundle: BundleFactory, poem_bundle: Path) -> Path:
    """A models folder: the usual tiny char model (the default) beside a tiny poem model."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copytree(make_bundle(window=20), folder / "tiny-char")
    shutil.copytree(poem_bundle, folder / "tiny-tang")
    return folder


@pytest.fixture(scope="session")
def shipped_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped nietzsche-char model alone (its book is a shipped corpus: novelty, games)."""
    folder = tmp_path_factory.mktemp("shipped")
    (folder / "nietzsche-char").symlink_to(Path(__file__).resolve().parents[2] / "models" / "nietzsche-char")
    return folder


@asynccontextmanager
async def books_ready(
    database_url: str, model_dir: Path, bot_settings: dict[str, Any]
) -> AsyncIterator[Harness]:
    """The running bot with real models (nietzsche-char the default), their books indexed
    before the test starts (novelty badges, games)."""
    from bot.services import SERVICES_KEY

    async with SandboxServer() as sb:
        settings = make_settings(sb, database_url, model_dir, default_model="nietzsche-char", **bot_settings)
        app = await start_app(settings, model_dir)
        await app.bot_data[SERVICES_KEY].novelty.wait_ready()
        db = Database.from_url(database_url)
        h = Harness(sb=sb, settings=settings, app=app, db=db)
        try:
            yield h
        finally:
            await stop_app(h.app)
            await db.dispose()


@pytest.fixture
async def shipped_harness(
    database_url: str, shipped_model_dir: Path, bot_settings: dict[str, Any]
) -> AsyncIterator[Harness]:
    """The running bot with the shipped char model, its book indexed before the test starts."""
    async with books_ready(database_url, shipped_model_dir, bot_settings) as h:
        yield h
