"""The novelty badge: greedy samples of the shipped model copy its book and say so; hot ones do not."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import StoredSample
from bot.render import stored_sample_html
from bot.services import SERVICES_KEY
from tests.e2e.conftest import Harness

pytestmark = pytest.mark.slow


async def _samples(harness: Harness) -> list[StoredSample]:
    async def work(session: AsyncSession) -> list[StoredSample]:
        return list(await session.scalars(select(StoredSample).order_by(StoredSample.id)))

    return list(await harness.query(work))


async def test_greedy_copies_and_shows_the_badge_hot_does_not(shipped_harness: Harness) -> None:
    h = shipped_harness
    ann = h.sb.user("Ann")
    await h.say(ann, "/length 300")
    await h.say(ann, "/temp 0")
    greedy = await h.say(ann, "the will to truth", timeout=60)
    # Greedy loops on the book's phrases: no single long run, but almost nothing new.
    assert "🧩 pieced together from the book's phrases:" in greedy["text"]
    await h.say(ann, "/temp 1.2")
    hot = await h.say(ann, "the will to truth", timeout=60)
    assert "⚠" not in hot["text"] and "🧩" not in hot["text"]

    first, second = await _samples(h)
    assert first.longest_copied is not None and first.longest_copied >= 10
    assert first.new_ngram_share is not None and first.new_ngram_share < 0.25
    assert f"phrases: {round(first.new_ngram_share * 100)}% of its 8-grams are new" in greedy["text"]
    assert second.longest_copied is not None and second.longest_copied < 30
    assert second.new_ngram_share is not None and second.new_ngram_share > 0.25
    # Shown again from the numbers stored with the sample (the outbox's re-send, /top, /rate).
    generation = h.app.bot_data[SERVICES_KEY].generation
    assert "🧩 pieced together from the book's phrases:" in stored_sample_html(generation, first, "en")
    assert not {"⚠", "🧩"} & set(stored_sample_html(generation, second, "en"))


async def test_compare_shows_the_badge_per_part(shipped_harness: Harness) -> None:
    h = shipped_harness
    ann = h.sb.user("Ann")
    await h.say(ann, "/temp 0")
    reply = await h.say(ann, "/compare the will to truth", timeout=60)
    # /compare shows the badge per part: the greedy-ish T=0.2 part is stitched, T=1.2 is not.
    assert reply["text"].count("🧩") >= 1
    assert not {"⚠", "🧩"} & set(reply["text"].split("T=1.2")[-1])


@pytest.mark.parametrize("bot_settings", [{"max_copied": 15}])
async def test_max_copied_draws_again_and_says_when_every_draw_copies(
    shipped_harness: Harness, bot_settings: dict[str, Any]
) -> None:
    h = shipped_harness
    ann = h.sb.user("Ann")
    await h.say(ann, "/length 200")
    await h.say(ann, "/temp 0")
    reply = await h.say(ann, "the will to truth", timeout=90)
    # Greedy draws are all the same, so all four copy: the last is sent, with a note.
    assert "Every draw copied from the book (4 tries)" in reply["text"]
    (sample,) = await _samples(h)
    assert sample.longest_copied is not None and sample.longest_copied > 15
    assert h.sb.calls("sendMessage")  # one reply only: the redraws were not sent
    assert len(h.sb.bot_messages(ann["id"])) == 3
