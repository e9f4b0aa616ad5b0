"""`lstmbot learn`: a round from the bot's database to a challenger (or a rejection, or a
refusal), on SQLite and PostgreSQL, with a tiny bundle and two training steps."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

import cli
from bot.db import repository as repo
from bot.db.database import Database
from bot.db.models import Base, StoredSample
from bot.db.outcomes import Outcome
from bot.db.repository import duels as dr
from bot.db.repository import models as registry
from tests.bot.storage.factories import make_chat, make_sample, make_user

MODEL = "tiny-char"
LIKED, DISLIKED = "is a woman--what then? ", "xq zzv qqq xq zzv "
TINY_RUN = ("--steps", "2", "--samples", "8", "--eval-stride", "7")
T = TypeVar("T")


def _on(url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in a session of its own. The tests are synchronous: training installs signal
    handlers, which only the main thread may, and `lstmbot learn` runs its own event loops."""

    async def go() -> T:
        db = Database.from_url(url)
        try:
            return await db.run(work)
        finally:
            await db.dispose()

    return asyncio.run(go())


@pytest.fixture
def url(database_url: str) -> Iterator[str]:
    """The backend's database with the schema created, dropped afterwards."""

    async def schema(create: bool) -> None:
        db = Database.from_url(database_url)
        try:
            async with db.engine.begin() as conn:
                await conn.run_sync(Base.metadata.drop_all)
                if create:
                    await conn.run_sync(Base.metadata.create_all)
        finally:
            await db.dispose()

    asyncio.run(schema(True))
    yield database_url
    asyncio.run(schema(False))


def _seed(url: str, *, liked: int, disliked: int, duels: int = 0, picks: int = 0) -> None:
    """Rated samples of MODEL, duels of MODEL against itself and inline picks, all shared; plus
    rows a round must leave out: one from before the champion, one of another model."""

    async def work(session: AsyncSession) -> None:
        author, rater = await make_user(session), await make_user(session)
        chat = await make_chat(session)
        verdicts = [(LIKED, 1)] * liked + [(DISLIKED, -1)] * disliked + [(LIKED, 1)] * 2
        for i, (text, score) in enumerate(verdicts):
            sample = await make_sample(
                session, user=author, chat=chat, model_name=MODEL, seed="supposing that truth ", text=text
            )
            await repo.rate(session, sample_id=sample.id, user_id=rater.id, score=score)
            await repo.set_shared(session, sample_id=sample.id, shared=True)
            if i == len(verdicts) - 2:  # made long before any champion
                old = datetime(2000, 1, 1, tzinfo=UTC)
                await session.execute(
                    update(StoredSample).where(StoredSample.id == sample.id).values(created_at=old)
                )
            if i == len(verdicts) - 1:
                await session.execute(
                    update(StoredSample).where(StoredSample.id == sample.id).values(model_name="other")
                )
        for _ in range(duels):
            duel = await dr.record_duel(
                session,
                user_id=author.id,
                chat_id=chat.id,
                private=False,
                seed="have been unskilled ",
                length=20,
                a=dr.Side(dr.Arm(MODEL, 0.5), "v1", 1, LIKED),
                b=dr.Side(dr.Arm(MODEL, 1.2), "v1", 2, DISLIKED),
                update_id=None,
            )
            await dr.cast_vote(
                session, duel=duel, user_id=rater.id, outcome=Outcome("a"), min_delay_s=0, daily_cap=100
            )
        for _ in range(picks):
            texts = [LIKED, DISLIKED, "qqq " * 4]
            candidates = [
                {"temperature": t, "text": x, "rng_seed": 7, "length": 9}
                for t, x in zip((0.3, 0.5, 0.8), texts, strict=True)
            ]
            offer_id = await repo.create_inline_offer(
                session,
                user_id=author.id,
                seed="the terrible ",
                model_name=MODEL,
                model_version="v1",
                candidates=candidates,
            )
            offer = await repo.take_inline_offer(session, offer_id=offer_id, user_id=author.id)
            assert offer is not None
            sent = await make_sample(
                session, user=author, chat=chat, model_name=MODEL, seed=offer.seed, text=LIKED
            )
            await repo.set_shared(session, sample_id=sent.id, shared=True)
            offer.chosen, offer.sample_id = 0, sent.id

    _on(url, work)


@pytest.fixture
def corpus(tmp_path: Path, tiny_text: str) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(tiny_text, encoding="utf-8")
    return path


def _learn(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["learn", MODEL, *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _versions(url: str) -> dict[str, registry.Version]:
    rows = _on(url, lambda s: registry.list_versions(s, name=MODEL))
    return {row.role: row for row in rows}


@pytest.mark.slow
def test_learn_publishes_a_challenger_with_lineage(
    url: str,
    tiny_bundle: Path,
    corpus: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Rated before its publication (the shipped bundle is published by hand before its first
    # successor): those rows count, since the champion was made when its bundle was (an
    # operator pass found them all dropped when "since" was the registry row's creation).
    _seed(url, liked=4, disliked=4, duels=1, picks=1)
    champion = _on(url, lambda s: registry.publish(s, bundle=tiny_bundle, role="champion", name=MODEL))
    out = tmp_path / "round" / "challenger"
    argv = ("--database-url", url, "--corpus", str(corpus), "--out", str(out), "--min-rows", "8")
    code, text, err = _learn(capsys, *argv, *TINY_RUN)
    assert code == 0, err
    assert f"champion {champion.version} (registry)" in text
    assert (
        "11 preference rows since" in text
        and "8 rated samples (4 liked, 4 disliked), 1 duels, 2 inline picks" in text
    )
    assert "gates, challenger against champion:" in text and "FAIL" not in text
    challenger = (_versions(url))["challenger"]
    assert f"published {MODEL} {challenger.version} as the challenger" in text
    assert challenger.parent_version == champion.version
    lineage = challenger.lineage
    assert lineage["parent"] == champion.version and lineage["parent_source"] == "registry"
    data = lineage["data"]
    assert (data["rows"], data["ratings"], data["liked"], data["disliked"]) == (11, 8, 4, 4)
    assert (data["duels"], data["inline_picks"]) == (1, 2)
    made = datetime.fromisoformat(json.loads((tiny_bundle / "config.json").read_text())["created"])
    assert datetime.fromisoformat(data["since"]) == made.replace(tzinfo=made.tzinfo or UTC)
    assert datetime.fromisoformat(data["until"]) > champion.created_at > made.replace(tzinfo=UTC)
    assert set(lineage["gates"]) == {"heldout_loss", "copy_rate", "repetition"} and lineage["passed"] is True
    loss = lineage["gates"]["heldout_loss"]
    assert loss["champion"] == lineage["champion"]["heldout_loss"] and loss["passed"] is True
    assert loss["limit"] == pytest.approx(loss["champion"] + 0.03, abs=1e-5)
    assert lineage["measured"]["samples"] == 8 and lineage["training"]["steps"] == 2
    assert lineage["preferences"]["loss"] == "kto"  # the bundle's own record, from the training
    # Beside the bundle: what it learned from and the round's report; the bundle bears the name.
    assert len((out / "preferences.jsonl").read_text().splitlines()) == 11
    assert json.loads((out / "learn.json").read_text())["gates"] == lineage["gates"]
    assert json.loads((out / "config.json").read_text())["name"] == MODEL
    # While the challenger is in duels, another round waits for its verdict.
    code, _, err = _learn(capsys, *argv[:-2], "--out", str(tmp_path / "again"), *argv[-2:])
    assert code == 2 and f"already has a challenger ({challenger.version}) in duels" in err


def _seed_own_samples(url: str, bundle: Path, version: str, count: int) -> None:
    """`count` samples the champion itself wrote at T=1.0, rated: the sharpest tenth liked (by
    their mean log-probability under the champion), the rest disliked."""
    from core.bundle import load_bundle
    from core.generator import Generator, Request
    from train.lesson import Rated, log_probs

    generator = Generator(load_bundle(bundle))
    prompt = "supposing that truth "
    texts = [
        s.text
        for s in generator.generate(
            [Request(prompt, length=80, temperature=1.0, rng=i) for i in range(count)]
        )
    ]
    sharpness = log_probs(generator, [Rated(prompt, t, True, 1.0) for t in texts], [(1.0, 1.0)])[:, 0]
    cut = sorted(sharpness)[int(0.9 * count)]

    async def work(session: AsyncSession) -> None:
        author, rater = await make_user(session), await make_user(session)
        chat = await make_chat(session)
        for text, sharp in zip(texts, sharpness, strict=True):
            sample = await make_sample(
                session,
                user=author,
                chat=chat,
                model_name=MODEL,
                model_version=version,
                seed=prompt,
                text=text,
                temperature=1.0,
            )
            await repo.rate(session, sample_id=sample.id, user_id=rater.id, score=1 if sharp >= cut else -1)
            await repo.set_shared(session, sample_id=sample.id, shared=True)

    _on(url, work)


@pytest.mark.slow
def test_a_lesson_the_ratings_ask_for_is_taught_instead_of_kto(
    url: str,
    tiny_bundle: Path,
    corpus: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Raters who like the champion's sharper samples: the round distils a sharper champion
    (train/lesson.py, train/distill.py) and records the lesson; `--lesson off` keeps to KTO."""
    champion = _on(url, lambda s: registry.publish(s, bundle=tiny_bundle, role="champion", name=MODEL))
    _seed_own_samples(url, tiny_bundle, champion.version, 80)
    out = tmp_path / "taught"
    argv = ("--database-url", url, "--corpus", str(corpus), "--min-rows", "8", *TINY_RUN)
    # The copy gate's probe at T=1.0 with 64 samples: this tiny model's weights at T=0.5 and
    # 8 samples leave too few effective samples to estimate its copying under a lesson.
    taught = ("--lesson-steps", "3", "--samples", "64", "--temperature", "1.0")
    code, text, err = _learn(capsys, *argv, "--out", str(out), *taught)
    assert code in (0, 3), err  # published or rejected by a gate: either way, taught
    assert "looking for a lesson in the 80 ratings of the champion's own samples" in text
    assert ": worth a round" in text and "teaching it: 3 steps of distillation" in text
    assert "fine-tuning" not in text
    recorded = json.loads((out / "learn.json").read_text())
    assert recorded["training"]["loss"] == "lesson" and recorded["training"]["steps"] == 3
    lesson = recorded["training"]["lesson"]
    assert lesson["inside"] > 1.0 or lesson["elsewhere"] > 1.0
    assert json.loads((out / "config.json").read_text())["lesson"]["inside"] == lesson["inside"]

    if code == 0:  # a challenger in duels would make the next round wait for its verdict
        challenger = _versions(url)["challenger"].version
        _on(url, lambda s: registry.retire(s, name=MODEL, version=challenger, reason="test"))
    off = tmp_path / "kto"
    code, text, err = _learn(capsys, *argv, "--out", str(off), "--lesson", "off")
    assert code in (0, 3), err
    assert "looking for a lesson" not in text and "fine-tuning 2 steps (KTO" in text
    assert json.loads((off / "learn.json").read_text())["training"]["loss"] == "kto"


@pytest.mark.slow
def test_a_round_that_fails_a_gate_is_stored_rejected_with_its_reason(
    url: str,
    tiny_bundle: Path,
    corpus: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODEL_DIR", str(tiny_bundle.parent))  # no champion in the registry
    _seed(url, liked=3, disliked=3)
    out = tmp_path / "sabotaged"
    argv = ("--database-url", url, "--corpus", str(corpus), "--out", str(out), "--min-rows", "6")
    # The held-out loss must drop by a whole nat: no fine-tuning of two steps does that.
    code, text, err = _learn(capsys, *argv, *TINY_RUN, "--max-loss-increase", "-1")
    assert code == 3, err
    assert "(MODEL_DIR)" in text and "6 preference rows since" in text
    rejected = (_versions(url))["rejected"]
    assert rejected.reason is not None and rejected.reason.startswith("held-out loss ")
    assert rejected.reason.endswith("nats/char over the champion's (at most -1.0000)")
    assert f"rejected {MODEL} {rejected.version}: {rejected.reason}" in text
    assert (
        rejected.lineage["passed"] is False and rejected.lineage["gates"]["heldout_loss"]["passed"] is False
    )
    assert rejected.lineage["parent_source"] == "MODEL_DIR"
    assert (out / "config.json").is_file() and (out / "learn.json").is_file()  # the bundle is kept
    live = _on(url, registry.live_versions)
    assert live == []  # never served


def test_too_little_data_is_refused(
    url: str,
    tiny_bundle: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODEL_DIR", str(tiny_bundle.parent))
    _seed(url, liked=3, disliked=0)
    out = tmp_path / "never"
    code, text, err = _learn(capsys, "--database-url", url, "--out", str(out))
    assert code == 2
    assert "3 preference rows since" in text and "3 rated samples (3 liked, 0 disliked)" in text
    assert "too little data to learn from: 3 preference rows, at least 50 wanted (--min-rows)" in err
    assert not out.exists()
    # Enough rows, all of one verdict: KTO has nothing to tell apart.
    code, _, err = _learn(capsys, "--database-url", url, "--min-rows", "2", "--out", str(out))
    # Said without `lstmbot train`'s --preference-loss or the temporary file's name (operator pass)
    assert code == 2 and not out.exists(), err
    assert "(all 3 liked): a round needs both likes and dislikes; wait for more ratings" in err
    assert "--preference-loss" not in err and "preferences.jsonl" not in err
    assert _versions(url) == {}
    # A name learn cannot find: how learn itself takes a path (it has no --model).
    code = cli.main(["learn", "nosuch-model", "--database-url", url, "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and "no model named 'nosuch-model'" in err and "give MODEL as the path" in err
    assert "--model" not in err


def test_dry_run_says_what_it_would_do(
    url: str,
    tiny_bundle: Path,
    corpus: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODEL_DIR", str(tiny_bundle.parent))
    _seed(url, liked=20, disliked=20)
    out = tmp_path / "dry"
    argv = ("--database-url", url, "--out", str(out), "--min-rows", "40", "--dry-run")
    # The tiny bundle was not trained on a shipped corpus: the round needs to be told its book.
    code, _, err = _learn(capsys, *argv)
    assert code == 2 and "which is not shipped: give --corpus" in err
    code, text, _ = _learn(capsys, *argv, "--corpus", str(corpus))
    assert code == 0
    assert "40 preference rows since" in text
    assert (
        "dry run: would look for a lesson in the ratings, then teach it or "
        f"fine-tune 3 steps (KTO, lr 0.0006) from {tiny_bundle} on {corpus} into {out}" in text
    )
    assert not out.exists() and _versions(url) == {}
