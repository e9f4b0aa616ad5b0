"""A challenger judged by blind duels, end to end (issue 25): published into the registry, it
is pitted against its champion in /duel at the user's temperature, hidden like every duel; the
sequential test promotes it after enough counted wins, the admins are told, and every replica
serves it as the champion."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Duel
from bot.db.repository import models as registry
from bot.generation import GenerationService
from bot.services import SERVICES_KEY
from tests.e2e.conftest import ADMIN_ID, Harness
from tests.e2e.test_hot_reload import _tuned

pytestmark = pytest.mark.slow


@pytest.fixture
def bot_settings(tmp_path: Path) -> dict[str, Any]:
    """Every duel a challenger duel; votes count at once; a test small enough for five votes."""
    return {
        "model_poll_s": 0.2,
        "model_cache_dir": tmp_path / "model-cache",
        "challenger_share": 1.0,
        "duel_min_vote_s": 0,
        "promotion_alpha": 0.25,
        "promotion_min_votes": 3,
        "promotion_max_votes": 50,
    }


async def _challenge(
    harness: Harness, shipped: Path, folder: Path, version: str, scale: float
) -> tuple[GenerationService, str]:
    """Publish a "tuned" tiny-char as the challenger and wait until the bot serves it; returns
    the generation service and the champion's version."""
    generation: GenerationService = harness.app.bot_data[SERVICES_KEY].generation
    champion = generation.info("tiny-char").version
    tuned = _tuned(shipped, folder, version, scale)
    await harness.db.run(lambda s: registry.publish(s, bundle=tuned, role="challenger", name="tiny-char"))
    await harness.sb.wait_until(
        lambda: "tiny-char" in generation.challengers, timeout=20, what="the challenger"
    )
    return generation, champion


async def _last_duel(harness: Harness) -> Duel:
    async def work(session: AsyncSession) -> Duel:
        return (await session.scalars(select(Duel).order_by(Duel.id.desc()))).first()  # type: ignore[return-value]

    duel: Duel = await harness.query(work)
    return duel


async def test_a_challenger_that_wins_its_blind_duels_is_promoted(
    harness: Harness, model_dir: Path, tmp_path: Path
) -> None:
    generation, champion = await _challenge(
        harness, model_dir / "tiny-char", tmp_path / "tuned", "tuned-1", 0.5
    )

    admin = harness.sb.user("Admin")
    assert admin["id"] == ADMIN_ID
    voters = [harness.sb.user(f"Voter{i}") for i in range(6)]
    group = harness.sb.group("club", [admin, *voters])
    await harness.say(voters[0], "/temp 0.8")
    shown = await harness.say(voters[0], "/duel the will to truth", chat=group, timeout=30)
    duel = await _last_duel(harness)
    # The same arm on both sides, at the asker's temperature; which side is which is hidden.
    assert (duel.model_a, duel.temperature_a) == (duel.model_b, duel.temperature_b) == ("tiny-char", 0.8)
    assert {duel.version_a, duel.version_b} == {champion, "tuned-1"}
    assert "tuned-1" not in shown["text"] and champion not in shown["text"]
    challenger_side = "A" if duel.version_a == "tuned-1" else "B"

    first = await harness.press(voters[1], shown, button=challenger_side)
    # A counted vote names both sides to its voter, each with its version.
    assert "tiny-char vtuned-1 T=0.8" in first["text"] and f"tiny-char v{champion} T=0.8" in first["text"]
    await harness.press(voters[2], shown, button=challenger_side)
    board = await harness.say(voters[3], "/leaderboard", chat=group)
    assert (
        "Challenger tiny-char vtuned-1 against its champion in blind duels: 2 votes, wins 100%"
        in board["text"]
    )
    assert "No counted duel votes yet" in board["text"]  # a challenger duel is not a leaderboard arm
    for voter in voters[3:6]:
        await harness.press(voter, shown, button=challenger_side)

    # Five straight wins reach the evidence 1/alpha = 4: promoted, the admin told, served.
    told = await harness.sb.wait_for_bot_messages(ADMIN_ID, timeout=20)
    assert told[-1]["text"].startswith("Challenger tiny-char tuned-1: promoted, better after 5 votes")
    await harness.sb.wait_until(
        lambda: generation.info("tiny-char").version == "tuned-1", timeout=20, what="the promotion"
    )
    current = await harness.db.run(lambda s: registry.champion_of(s, name="tiny-char"), write=False)
    assert current is not None and current.version == "tuned-1"
    assert "tiny-char" not in generation.challengers
    await asyncio.sleep(0.5)
    assert len(harness.sb.bot_messages(ADMIN_ID)) == 1  # told once


async def test_a_challenger_that_loses_is_retired_never_promoted(
    harness: Harness, model_dir: Path, tmp_path: Path
) -> None:
    generation, champion = await _challenge(
        harness, model_dir / "tiny-char", tmp_path / "sabotaged", "sabotaged-1", 3.0
    )
    harness.sb.user("Admin")
    voters = [harness.sb.user(f"Voter{i}") for i in range(5)]
    group = harness.sb.group("club", voters)
    shown = await harness.say(voters[0], "/duel what then", chat=group, timeout=30)
    duel = await _last_duel(harness)
    champion_side = "A" if duel.version_a == champion else "B"
    for voter in voters:
        await harness.press(voter, shown, button=champion_side)
    told = await harness.sb.wait_for_bot_messages(ADMIN_ID, timeout=20)
    assert told[-1]["text"].startswith("Challenger tiny-char sabotaged-1: retired, not better after 5 votes")
    await harness.sb.wait_until(lambda: "tiny-char" not in generation.challengers, timeout=20, what="retired")
    versions = await harness.db.run(lambda s: registry.list_versions(s, name="tiny-char"), write=False)
    assert [(v.version, v.role) for v in versions] == [("sabotaged-1", "retired")]
    assert generation.info("tiny-char").version == champion
