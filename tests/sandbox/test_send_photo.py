"""The sandbox's sendPhoto: an uploaded picture is kept, described, and served to the web page."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image
from telegram import Bot
from telegram.error import BadRequest

from sandbox.testing import SandboxServer


def picture(width: int, height: int, kind: str = "PNG") -> bytes:
    """A plain picture of the given size, encoded as `kind`."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (128, 128, 128)).save(out, kind)
    return out.getvalue()


async def test_send_photo_stores_size_and_dimensions(sb: SandboxServer, bot: Bot) -> None:
    ann = sb.user("Ann")
    png = picture(30, 20)
    sent = await bot.send_photo(ann["id"], png, caption="chart")
    assert (sent.photo[0].width, sent.photo[0].height, sent.photo[0].file_size) == (30, 20, len(png))
    assert sent.caption == "chart"
    with pytest.raises(BadRequest, match="no photo"):
        await bot.send_photo(ann["id"], "AgACAgQAAxkBAAI")  # a file id: not supported here
    (stored,) = sb.bot_messages(ann["id"])
    assert stored["photo"][0]["file_size"] == len(png) and "text" not in stored


@pytest.mark.parametrize(("kind", "content_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg")])
async def test_the_page_gets_the_photo_bytes_with_their_content_type(
    sb: SandboxServer, bot: Bot, kind: str, content_type: str
) -> None:
    ann = sb.user("Ann")
    data = picture(99, 52, kind)
    sent = await bot.send_photo(ann["id"], data)
    assert (sent.photo[-1].width, sent.photo[-1].height) == (99, 52)
    async with httpx.AsyncClient() as client:
        served = await client.get(f"{sb.url}/sandbox/file/{sent.photo[-1].file_unique_id}")
        missing = await client.get(f"{sb.url}/sandbox/file/nosuchfile")
    assert served.status_code == 200 and served.content == data
    assert served.headers["content-type"] == content_type
    assert missing.status_code == 404


async def test_a_caption_is_parsed_by_its_parse_mode(sb: SandboxServer, bot: Bot) -> None:
    ann = sb.user("Ann")
    sent = await bot.send_photo(ann["id"], picture(8, 8), caption="<b>Duels</b> so far", parse_mode="HTML")
    assert sent.caption == "Duels so far"
    assert [(e.type, e.offset, e.length) for e in sent.caption_entities] == [("bold", 0, 5)]
    with pytest.raises(BadRequest, match="caption is too long"):
        await bot.send_photo(ann["id"], picture(8, 8), caption="<b>x</b>" * 1025, parse_mode="HTML")


async def test_bytes_that_are_not_a_picture_are_refused_as_telegram_does(sb: SandboxServer, bot: Bot) -> None:
    ann = sb.user("Ann")
    with pytest.raises(BadRequest, match=r"(?i)image_process_failed"):
        await bot.send_photo(ann["id"], b"not a picture at all")
    assert sb.bot_messages(ann["id"]) == []
