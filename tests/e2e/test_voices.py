"""Every shipped model, every feature: /model with its description, /gen without a seed,
/compare, /duel, a "Real or dream?" game from its held-out part, inline mode, and a Chinese client
starting on the prose model (issue 27: "Each model, every feature")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.services import SERVICES_KEY
from bot.texts import corpus_line
from tests.e2e.conftest import Harness, books_ready

pytestmark = pytest.mark.slow
MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.fixture
async def voices(database_url: str, bot_settings: dict[str, Any]) -> AsyncIterator[Harness]:
    """The running bot with every model the repository ships, their books indexed."""
    async with books_ready(database_url, MODELS, bot_settings) as h:
        yield h


async def test_every_shipped_model_works_in_every_feature(voices: Harness) -> None:
    h = voices
    services = h.app.bot_data[SERVICES_KEY]
    infos = services.generation.models()
    assert len(infos) == len([p for p in MODELS.iterdir() if (p / "config.json").exists()])
    ann = h.sb.user("Ann")
    group = h.sb.group("Voices", [ann])
    listing = await h.say(ann, "/model")
    for info in infos:
        assert info.corpus and corpus_line("en", info.corpus) in listing["text"], info.name
        assert info.name in services.novelty.books, f"{info.name} has no book (no game, no badge)"
        switched = await h.say(ann, f"/model {info.name}")
        assert info.name in switched["text"]
        made = await h.say(ann, "/gen", timeout=60)
        assert "T=" in made["text"], made["text"]
        body = made["text"].split("\n\n")[0]
        assert len(body) > 20, (info.name, body)
        compared = await h.say(ann, "/compare", timeout=60)
        assert compared["text"].count("T=") >= 2, (info.name, compared["text"][:200])
        duel = await h.say(ann, "/duel", timeout=60)
        assert duel["text"].startswith("Which continuation is better?"), (info.name, duel["text"][:200])
        await h.say(ann, f"/model {info.name}", chat=group)
        game = await h.say(ann, "/game 10", chat=group, timeout=60)
        assert game["text"].startswith("Real or dream?"), (info.name, game["text"][:200])
        await h.say(ann, "/game stop", chat=group, timeout=30)
        seed = str(services.generation.generator(info.name).bundle.meta["seeds"][0])
        results = await h.sb.wait_for_inline_results(h.sb.inline_query(ann, seed), timeout=60)
        assert results, info.name


async def test_a_chinese_client_starts_on_the_prose_model(voices: Harness) -> None:
    h = voices
    li = h.sb.user("Li", language_code="zh-hans")
    shown = await h.say(li, "/settings")
    assert "hongloumeng-word" in shown["text"]
