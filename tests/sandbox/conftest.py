"""Fixtures for the sandbox tests: a sandbox on a free port, and a python-telegram-bot Bot on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot

from sandbox.testing import SandboxServer


@pytest.fixture
async def sb() -> AsyncIterator[SandboxServer]:
    async with SandboxServer() as server:
        yield server


@pytest.fixture
async def bot(sb: SandboxServer) -> AsyncIterator[Bot]:
    async with Bot(sb.token, base_url=sb.base_url, base_file_url=sb.base_file_url) as tg_bot:
        yield tg_bot
