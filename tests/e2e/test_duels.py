"""/duel and /leaderboard end to end: votes, changed votes, the reveal, early votes, forged
and foreign presses, 🆚 under a sample, the chart sent as a photo."""

from __future__ import annotations

import asyncio
import io
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import cli
from bot.db.models import Duel, DuelVote
from bot.db.preference_export import write_preferences
from bot.finishing import asked, finished_text
from bot.handlers.leaderboard import leaderboard_state
from bot.services import SERVICES_KEY, Services
from core.generator import Request, Sample
from core.word_end import margin
from tests.e2e.conftest import Harness

pytestmark = pytest.mark.slow

INVALID = "This button is not valid any more."
REVEAL = re.compile(r"A was (tiny-\w+) T=([\d.]+), B was (tiny-\w+) T=([\d.]+)\.")


def buttons(message: dict[str, object]) -> list[str]:
    markup = message.get("reply_markup") or {}
    assert isinstance(markup, dict)
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


async def duels_and_votes(harness: Harness) -> tuple[list[Duel], list[DuelVote]]:
    async def work(session: AsyncSession) -> tuple[list[Duel], list[DuelVote]]:
        duels = list((await session.scalars(select(Duel).order_by(Duel.id))).all())
        votes = list((await session.scalars(select(DuelVote).order_by(DuelVote.duel_id))).all())
        return duels, votes

    result: tuple[list[Duel], list[DuelVote]] = await harness.query(work)
    return result


async def test_duels_are_blind_until_a_counted_vote_which_is_final(harness: Harness) -> None:
    """Issue 24, item 2: the first press, even one too fast to count, used to name both arms;
    the same voter could then vote, and change the vote, knowing them."""
    ann, bo = harness.sb.user("Ann"), harness.sb.user("Bo")
    duel = await harness.say(ann, "/duel the free spirit")
    assert buttons(duel) == ["A is better", "B is better", "Tie", "Both bad"]
    text = duel["text"]
    assert text.count("the free spirit") == 2 and "\nA\n" in text and "\nB\n" in text
    assert "T=" not in text and "tiny-" not in text  # the settings stay hidden

    early = await harness.press(ann, duel, button="A is better")  # well under 2 s: stored only
    assert early["text"].startswith("Too fast to count") and "tiny-" not in early["text"]
    (stored,), (vote,) = await duels_and_votes(harness)
    assert (vote.outcome, vote.counted) == ("a", False)
    assert stored.telegram_message_id == duel["message_id"] and stored.seed == "the free spirit"
    assert stored.length == 200 and stored.private  # made in a private chat
    assert {stored.temperature_a, stored.temperature_b} <= {0.2, 0.5, 0.8, 1.0, 1.2}
    assert (stored.model_a, stored.temperature_a) != (stored.model_b, stored.temperature_b)
    assert REVEAL.search(early["text"]) is None

    await asyncio.sleep(2.1)
    counted = await harness.press(ann, duel, button="Tie")  # counts: now the arms are named
    assert counted["text"].startswith("Your vote: Tie.")
    revealed = REVEAL.search(counted["text"])
    assert revealed is not None
    assert revealed.groups() == (
        stored.model_a,
        f"{stored.temperature_a:g}",
        stored.model_b,
        f"{stored.temperature_b:g}",
    )
    final = await harness.press(ann, duel, button="A is better")  # knowing the arms: no change
    assert final["text"].startswith("You voted already: Tie.") and REVEAL.search(final["text"]) is None
    _, (vote,) = await duels_and_votes(harness)
    assert (vote.outcome, vote.counted) == ("tie", True)
    # The message itself never reveals the arms.
    assert "tiny-" not in harness.sb.message(ann["id"], duel["message_id"])["text"]

    # Forged data (not on the message) and a duel's button pressed on another message: refused.
    assert (await harness.press(ann, duel, data=f"d:{stored.id + 1}:a"))["text"] == INVALID
    other = await harness.say(ann, "/duel another seed")
    assert (await harness.press(ann, other, data=f"d:{stored.id}:b"))["text"] == INVALID
    # Bo cannot see Ann's private chat; a group duel is his to vote on, once, for good.
    group = harness.sb.group("club", [ann, bo])
    in_group = await harness.say(ann, "/duel group seed", chat=group)
    await asyncio.sleep(2.1)
    assert (await harness.press(bo, in_group, button="Both bad"))["text"].startswith("Your vote: Both bad.")
    assert (await harness.press(bo, in_group, button="B is better"))["text"].startswith("You voted already")
    duels, votes = await duels_and_votes(harness)
    assert [d.private for d in duels] == [True, True, False]
    assert sorted((v.outcome, v.counted) for v in votes) == [("bad", True), ("tie", True)]


async def test_vs_button_under_a_sample_starts_a_duel_on_its_seed(harness: Harness) -> None:
    ann, bo = harness.sb.user("Ann"), harness.sb.user("Bo")
    sample = await harness.say(ann, "zarathustra said")
    before = len(harness.sb.bot_messages(ann["id"]))
    answer = await harness.press(ann, sample, button="🆚")
    (duel,) = await harness.sb.wait_for_bot_messages(ann["id"], after=before)
    assert answer["text"] in (None, "") and duel["text"].count("zarathustra said") == 2
    # Bo pressing 🆚 on Ann's private sample (forged onto his own message) is refused.
    own = await harness.say(bo, "hello")
    sample_id = next(
        b["callback_data"]
        for row in sample["reply_markup"]["inline_keyboard"]
        for b in row
        if b["callback_data"].startswith("vs:")
    )
    assert (await harness.press(bo, own, data=sample_id))["text"] == INVALID


async def test_duels_are_rate_limited_as_two_generations(
    harness: Harness, bot_settings: dict[str, object]
) -> None:
    harness.app.bot_data["services"].limits.per_minute = 3
    ann = harness.sb.user("Ann")
    assert "A is better" in buttons(await harness.say(ann, "/duel one"))
    refused = await harness.say(ann, "/duel two")
    assert "Slow down" in refused["text"]
    duels, _ = await duels_and_votes(harness)
    assert len(duels) == 1


async def test_leaderboard_sends_the_chart_and_the_table(harness: Harness) -> None:
    harness.app.bot_data["services"].settings.duel_min_vote_s = 0.0
    ann = harness.sb.user("Ann")
    empty = await harness.say(ann, "/leaderboard")
    assert "No counted duel votes yet" in empty["text"]
    for i in range(3):
        duel = await harness.say(ann, f"/duel seed {i}")
        await harness.press(ann, duel, button="A is better")
    sample = await harness.say(ann, "liked one")
    await harness.press(ann, sample, button="👍")
    state = leaderboard_state(harness.app)  # Ann asks again at once, after new votes:
    state.asks.every_s = state.cache.every_s = 0.0  # lift the 10 s limit and the 5 s cache
    before = len(harness.sb.bot_messages(ann["id"]))
    harness.sb.send(ann, ann["id"], "/leaderboard")
    photo, table = await harness.sb.wait_for_bot_messages(ann["id"], after=before, count=2)
    assert photo["photo"][0]["file_size"] > 10_000 and photo["photo"][0]["width"] == 990
    lines = table["text"].splitlines()
    assert lines[0] == "Leaderboard (3 counted duel votes)"
    assert lines[1] == "arm · strength [95%] · votes · both bad"
    rows = [
        re.fullmatch(
            r"\d+\. (tiny-\w+@[\d.]+) · ([+-][\d.]+) \[([+-][\d.]+), ([+-][\d.]+)\] · (\d+) · (\d+)%", line
        )
        for line in lines[2:]
    ]
    assert all(rows) and sum(int(r[5]) for r in rows if r) == 6
    assert all(float(r[3]) <= float(r[2]) <= float(r[4]) for r in rows if r)


async def test_exports_and_cli_leaderboard_from_what_people_did(
    harness: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.app.bot_data["services"].settings.duel_min_vote_s = 0.0
    ann, bo = harness.sb.user("Ann"), harness.sb.user("Bo")
    group = harness.sb.group("club", [ann, bo])
    private_sample = await harness.say(ann, "kept to myself")
    await harness.press(ann, private_sample, button="👍")
    group_sample = await harness.say(ann, "/gen said to the club", chat=group)
    await harness.press(bo, group_sample, button="👎")
    private_duel = await harness.say(ann, "/duel alone")
    await harness.press(ann, private_duel, button="B is better")
    group_duel = await harness.say(ann, "/duel together", chat=group)
    await harness.press(bo, group_duel, button="A is better")

    async def export(**options: Any) -> list[dict[str, Any]]:
        out = io.StringIO()

        async def work(session: AsyncSession) -> int:
            return await write_preferences(session, out, **options)

        await harness.query(work)
        return [json.loads(line) for line in out.getvalue().splitlines()]

    # The group sample was never shared: samples count as private until shared.
    assert await export(format="kto") == []
    kto = await export(format="kto", include_private=True)
    assert [(r["prompt"], r["label"]) for r in kto] == [("kept to myself", True), ("said to the club", False)]
    assert list(kto[0])[:3] == ["prompt", "completion", "label"]
    await harness.press(ann, group_sample, button="Share")
    assert [r["prompt"] for r in await export(format="kto")] == ["said to the club"]

    (dpo,) = await export(format="dpo")  # the private chat's duel stays out
    duels, _ = await duels_and_votes(harness)
    group_stored = next(d for d in duels if d.seed == "together")
    assert list(dpo)[:3] == ["prompt", "chosen", "rejected"]
    assert (dpo["prompt"], dpo["chosen"], dpo["rejected"]) == (
        "together",
        group_stored.text_a,
        group_stored.text_b,
    )
    assert (dpo["chosen_model"], dpo["chosen_temperature"], dpo["chosen_rng_seed"]) == (
        group_stored.model_a,
        group_stored.temperature_a,
        group_stored.rng_seed_a,
    )
    assert (dpo["rejected_model_version"], dpo["rejected_rng_seed"]) == (
        group_stored.version_b,
        group_stored.rng_seed_b,
    )
    assert len(await export(format="dpo", include_private=True)) == 2

    chart = tmp_path / "board.png"
    argv = [
        "leaderboard",
        "--png",
        str(chart),
        "--rounds",
        "20",
        "--database-url",
        harness.settings.database_url,
    ]
    assert await asyncio.to_thread(cli.main, argv) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "Leaderboard (2 counted duel votes)"
    assert len(printed) in (2 + 3 + 1, 2 + 4 + 1)  # two duels: three or four arms
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_a_duel_arm_cut_short_by_blanks_is_drawn_again(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flaky conformance failure: after an indented verse line a char model may write nothing
    but spaces (~1 ending in 600 at T=0.5); a duel showed that arm 42 characters long for a
    length of 150. Here the first arm's first draw is all blanks: it is drawn again, and the
    duel stores the rng seed that drew the text it shows."""
    services: Services = harness.app.bot_data[SERVICES_KEY]
    generation = services.generation
    real = generation.generate
    asked_for: list[Request] = []

    async def first_blank(request: Request, **kwargs: Any) -> Sample:
        asked_for.append(request)
        first = len(asked_for) == 1
        sample = await real(request, **kwargs)
        if not first:
            return sample
        pieces = [" "] * len(sample.pieces)  # what the model wrote: blanks to the end
        return replace(sample, text="".join(pieces), pieces=pieces)

    monkeypatch.setattr(generation, "generate", first_blank)
    ann = harness.sb.user("Ann")
    duel = await harness.say(ann, "/duel the free spirit")
    (stored,), _ = await duels_and_votes(harness)
    blank_rng, draws = asked_for[0].rng, len(asked_for)
    monkeypatch.undo()
    for model, temperature, rng, shown in (
        (stored.model_a, stored.temperature_a, stored.rng_seed_a, stored.text_a),
        (stored.model_b, stored.temperature_b, stored.rng_seed_b, stored.text_b),
    ):
        level = generation.info(model).level
        # Shown (nearly) as long as asked, and exactly what its stored rng seed draws.
        assert len(shown) >= stored.length - margin(level), (len(shown), stored.length)
        assert shown in duel["text"]
        request = Request(stored.seed, length=asked(stored.length, level), temperature=temperature, rng=rng)
        again = await generation.generate(request, model=model)
        assert finished_text(again.pieces, stored.length, level) == shown
    assert draws >= 3, "the blank arm was not drawn again"  # two arms, then the redraw
    assert blank_rng not in (stored.rng_seed_a, stored.rng_seed_b)  # the redraw's seed is stored
