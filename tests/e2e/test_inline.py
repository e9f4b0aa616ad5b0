"""Inline mode: "@bot seed" offers three continuations; the chosen one is stored as a sample."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import ALLOWED_UPDATES
from bot.db.models import InlineOffer, StoredSample
from tests.e2e.conftest import Harness

pytestmark = pytest.mark.slow


async def test_an_inline_query_offers_three_and_the_choice_is_stored(harness: Harness) -> None:
    assert "inline_query" in ALLOWED_UPDATES and "chosen_inline_result" in ALLOWED_UPDATES
    h = harness
    ann, bob = h.sb.user("Ann"), h.sb.user("Bob")
    group = h.sb.group("Friends", [ann, bob])
    await h.say(ann, "/temp 0.7")
    query_id = h.sb.inline_query(ann, "the will to truth", chat_type="supergroup")
    results = await h.sb.wait_for_inline_results(query_id)
    assert [r["title"] for r in results] == ["T=0.4", "T=0.7", "T=1.2"]
    for result in results:
        content = result["input_message_content"]
        assert content["text"].startswith("the will to truth")
        assert content["entities"][0] == {"type": "bold", "offset": 0, "length": len("the will to truth")}
        assert result["description"]  # a preview of the continuation

    # The same seed again within the cache time: the same offer, nothing generated anew.
    again = h.sb.inline_query(ann, "the will to truth")
    assert [r["id"] for r in await h.sb.wait_for_inline_results(again)] == [r["id"] for r in results]

    posted = h.sb.choose_inline_result(ann, group, query_id, results[2]["id"])
    assert posted["via_bot"]["id"] == h.sb.bot["id"]

    async def stored(session: AsyncSession) -> tuple[StoredSample | None, list[InlineOffer]]:
        sample = (await session.scalars(select(StoredSample))).first()
        return sample, list(await session.scalars(select(InlineOffer)))

    for _ in range(200):  # the chosen_inline_result update is handled asynchronously
        sample, offers = await h.query(stored)
        if sample is not None and offers[0].chosen is not None:
            break
        await asyncio.sleep(0.05)
    assert sample is not None and sample.temperature == 1.2 and sample.delivered
    assert sample.inline_message_id and sample.seed == "the will to truth"
    assert posted["text"] == "the will to truth" + sample.text + "\n\n" + posted["text"].split("\n\n")[-1]
    (offer,) = offers
    assert offer.chosen == 2 and offer.sample_id == sample.id
    assert [c["temperature"] for c in offer.candidates] == [0.4, 0.7, 1.2]
    assert offer.candidates[2]["text"] == sample.text


async def test_an_empty_inline_query_gets_no_results_and_stores_nothing(harness: Harness) -> None:
    ann = harness.sb.user("Ann")
    query_id = harness.sb.inline_query(ann, "   ")
    assert await harness.sb.wait_for_inline_results(query_id) == []

    async def offers(session: AsyncSession) -> int:
        return len(list(await session.scalars(select(InlineOffer))))

    assert await harness.query(offers) == 0


async def test_one_offer_sent_twice_stores_two_samples_and_its_first_pick(harness: Harness) -> None:
    """Telegram and the bot reuse an answer for a few seconds, so one offer's results can be sent
    again (another chat, the same query typed twice): each message sent is a sample; the offer's
    preference stays the first pick."""
    h = harness
    ann, bob = h.sb.user("Ann"), h.sb.user("Bob")
    group = h.sb.group("Friends", [ann, bob])
    query_id = h.sb.inline_query(ann, "the will to truth", chat_type="supergroup")
    results = await h.sb.wait_for_inline_results(query_id)
    again = h.sb.inline_query(ann, "the will to truth")  # answered from the bot's cache
    assert [r["id"] for r in await h.sb.wait_for_inline_results(again)] == [r["id"] for r in results]

    async def stored(session: AsyncSession) -> tuple[list[StoredSample], list[InlineOffer]]:
        samples = list(await session.scalars(select(StoredSample).order_by(StoredSample.id)))
        return samples, list(await session.scalars(select(InlineOffer)))

    async def samples_stored(count: int) -> tuple[list[StoredSample], list[InlineOffer]]:
        for _ in range(200):  # chosen_inline_result updates are handled asynchronously
            samples, offers = await h.query(stored)
            if len(samples) == count:
                break
            await asyncio.sleep(0.05)
        return samples, offers

    h.sb.choose_inline_result(ann, group, query_id, results[0]["id"])
    await samples_stored(1)  # then, a moment later, the same offer's second result elsewhere
    h.sb.choose_inline_result(ann, ann["id"], again, results[1]["id"])
    samples, offers = await samples_stored(2)
    (offer,) = offers
    assert [s.temperature for s in samples] == [c["temperature"] for c in offer.candidates[:2]]
    assert offer.chosen == 0 and offer.sample_id == samples[0].id
