"""Inline mode in the sandbox: answerInlineQuery, the two update kinds, and the web page's endpoints."""

from __future__ import annotations

import aiohttp
import pytest
from telegram import Bot, InlineQueryResultArticle, InputTextMessageContent
from telegram.constants import ParseMode
from telegram.error import BadRequest

from sandbox.testing import SandboxServer


def _article(result_id: str, body: str) -> InlineQueryResultArticle:
    return InlineQueryResultArticle(
        result_id, f"title {result_id}", InputTextMessageContent(body, parse_mode=ParseMode.HTML)
    )


async def test_inline_query_answer_and_chosen_result(sb: SandboxServer, bot: Bot) -> None:
    ann = sb.user("Ann")
    group = sb.group("Friends", [ann])
    query_id = sb.inline_query(ann, "the will", chat_type="supergroup")
    (update,) = await bot.get_updates(timeout=1, allowed_updates=["inline_query", "chosen_inline_result"])
    assert update.inline_query and update.inline_query.query == "the will"
    assert update.inline_query.chat_type == "supergroup"
    await bot.answer_inline_query(query_id, [_article("a", "<b>the will</b> to"), _article("b", "x")])
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):  # one answer per query
        await bot.answer_inline_query(query_id, [])
    results = await sb.wait_for_inline_results(query_id)
    assert results[0]["input_message_content"]["text"] == "the will to"
    posted = sb.choose_inline_result(ann, group, query_id, "a")
    assert posted["entities"] == [{"type": "bold", "offset": 0, "length": 8}]
    assert posted["via_bot"]["username"] == sb.bot["username"]
    (chosen,) = await bot.get_updates(offset=update.update_id + 1, timeout=1)
    assert chosen.chosen_inline_result and chosen.chosen_inline_result.result_id == "a"
    assert chosen.chosen_inline_result.inline_message_id


async def test_an_inline_update_is_not_delivered_unless_allowed(sb: SandboxServer, bot: Bot) -> None:
    ann = sb.user("Ann")
    sb.inline_query(ann, "seed")
    assert await bot.get_updates(timeout=0, allowed_updates=["message", "callback_query"]) == ()


async def test_the_web_page_endpoints_ask_list_and_choose(sb: SandboxServer, bot: Bot) -> None:
    ann = sb.user("Ann")
    async with aiohttp.ClientSession(sb.url) as http:
        async with http.post(
            "/sandbox/inline", json={"user_id": ann["id"], "chat_id": ann["id"], "query": "hi"}
        ) as r:
            query_id = (await r.json())["query_id"]
        (update,) = await bot.get_updates(timeout=1)
        assert update.inline_query and update.inline_query.id == query_id
        await bot.answer_inline_query(query_id, [_article("only", "hi there")])
        async with http.get(f"/sandbox/inline/{query_id}") as r:
            listed = await r.json()
        assert listed["answered"] and listed["results"] == [
            {"id": "only", "title": "title only", "description": ""}
        ]
        choose = {"user_id": ann["id"], "chat_id": ann["id"], "query_id": query_id}
        async with http.post("/sandbox/choose", json={**choose, "result_id": "forged"}) as r:
            assert r.status == 400
        async with http.post("/sandbox/choose", json={**choose, "result_id": "only"}) as r:
            assert r.status == 200
    (message,) = [m for m in sb.sandbox.state.chats[ann["id"]].messages.values() if m.get("via_bot")]
    assert message["text"] == "hi there"
