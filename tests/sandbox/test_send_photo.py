"""The sandbox's sendPhoto: a multipart upload kept as its size and PNG dimensions."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator

import pytest
from telegram import Bot
from telegram.error import BadRequest

from sandbox.testing import SandboxServer


def tiny_png(width: int, height: int) -> bytes:
    """A valid grey PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
async def sb() -> AsyncIterator[SandboxServer]:
    async with SandboxServer() as server:
        yield server


async def test_send_photo_stores_size_and_dimensions(sb: SandboxServer) -> None:
    ann = sb.user("Ann")
    png = tiny_png(30, 20)
    async with Bot(sb.token, base_url=sb.base_url, base_file_url=sb.base_file_url) as bot:
        sent = await bot.send_photo(ann["id"], png, caption="chart")
        assert (sent.photo[0].width, sent.photo[0].height, sent.photo[0].file_size) == (30, 20, len(png))
        assert sent.caption == "chart"
        with pytest.raises(BadRequest, match="no photo"):
            await bot.send_photo(ann["id"], "AgACAgQAAxkBAAI")  # a file id: not supported here
    (stored,) = sb.bot_messages(ann["id"])
    assert stored["photo"][0]["file_size"] == len(png) and "text" not in stored
