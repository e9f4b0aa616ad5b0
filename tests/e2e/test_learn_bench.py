"""bench/learn.py's parts at small sizes, against the real bot through the sandbox.

The learner itself (TensorFlow, minutes) is the full benchmark's job and tested in tests/cli;
here: a sabotaged round's inverted ratings, challenger duels voted by taste until the vote
budget (then retired by hand through `lstmbot models retire`), and the update accounting.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bench import learn as bl
from bench import preferences as bp
from bot.db.models import Duel
from bot.db.outcomes import Outcome
from bot.db.repository import models as registry
from bot.services import SERVICES_KEY
from tests.e2e.conftest import Harness
from tests.e2e.test_hot_reload import _tuned

pytestmark = pytest.mark.slow


@pytest.fixture
def bot_settings(tmp_path: Path) -> dict[str, Any]:
    """Every duel a challenger duel, votes count at once, a verdict needs many votes."""
    return {
        "model_poll_s": 0.2,
        "model_cache_dir": tmp_path / "model-cache",
        "challenger_share": 1.0,
        "duel_min_vote_s": 0,
        "promotion_min_votes": 30,
        "promotion_max_votes": 50,
    }


def e_count(text: str) -> float:
    """A deterministic taste for tiny models."""
    return float(text.count("e"))


def test_taste_picks_the_side_and_learner_lines_drop_samples() -> None:
    assert bl.outcome_for(e_count, "eee", "e") is Outcome.A
    assert bl.outcome_for(e_count, "e", "ee") is Outcome.B
    assert bl.outcome_for(e_count, "ex", "xe") is Outcome.TIE
    output = (
        "learn m: champion 1\n  60 rows\n\nsome sample text\n1/1 - 28s\npublished m 2 as the challenger\n"
    )
    assert bl.learner_lines(output) == ["learn m: champion 1", "  60 rows", "published m 2 as the challenger"]


async def test_sabotaged_ratings_are_inverted(harness: Harness, tmp_path: Path) -> None:
    liked, disliked = await bl.rate(harness.sb, harness.db, e_count, 3.0, samples=6, inverted=True, length=30)
    assert liked + disliked == 6
    assert await bp.export_kto(harness.db, tmp_path / "kto.jsonl") == 6
    rows = [json.loads(line) for line in (tmp_path / "kto.jsonl").read_text().splitlines()]
    assert all(row["label"] == (e_count(row["completion"]) < 3) for row in rows)


async def test_duels_stop_at_the_budget_and_the_challenger_is_retired(
    harness: Harness, model_dir: Path, tmp_path: Path, database_url: str
) -> None:
    generation = harness.app.bot_data[SERVICES_KEY].generation
    tuned = _tuned(model_dir / "tiny-char", tmp_path / "tuned", "tuned-1", 0.5)
    await harness.db.run(lambda s: registry.publish(s, bundle=tuned, role="challenger", name="tiny-char"))
    await harness.sb.wait_until(lambda: "tiny-char" in generation.challengers, timeout=20, what="challenger")
    result = bl.RoundResult(1, sabotaged=False, version="tuned-1")
    await bl.duel_until_decided(
        harness.sb, harness.db, e_count, result, budget=6, voters=2, name="tiny-char", length=30
    )
    assert result.votes == 6 == result.wins + result.losses + result.ties
    # The voters duel at their own /temp, the raters' temperature (1.0 unless told).
    temperatures = await harness.db.run(
        lambda s: s.scalars(select(Duel.temperature_a).distinct()), write=False
    )
    assert list(temperatures) == [1.0]
    await bl.decide(harness.db, database_url, result, name="tiny-char")
    assert result.decision == "retired" and "vote budget spent (6 votes)" in result.reason
    await harness.sb.wait_until(lambda: all(q["answered"] for q in harness.sb.answers().values()), timeout=10)
    traffic = bl.Traffic()
    traffic.add(harness.sb)
    assert traffic.ok(), traffic.report()
    assert "duel votes on challenger duels: 6" in result.report()
