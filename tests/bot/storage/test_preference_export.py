"""KTO and DPO exports: exact fields, labels, skipped ties, private rows kept out by default."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

import cli
from bot.db import repository as repo
from bot.db.database import Database
from bot.db.models import Chat, User
from bot.db.outcomes import Outcome
from bot.db.preference_export import write_preferences
from bot.db.repository import duels as dr
from bot.logs import user_hash
from tests.bot.storage.factories import make_chat, make_sample, make_user

KTO_FIELDS = [
    "prompt", "completion", "label", "model", "model_version", "temperature", "rng_seed",
    "up_votes", "down_votes", "shared", "user",
]  # fmt: skip
SIDE = ["model", "model_version", "temperature", "rng_seed"]
DPO_FIELDS = [
    "prompt", "chosen", "rejected",
    *[f"chosen_{k}" for k in SIDE], *[f"rejected_{k}" for k in SIDE],
    "chosen_votes", "rejected_votes", "duel_id", "user",
]  # fmt: skip


async def _rated(
    session: AsyncSession,
    author: User,
    chat: Chat,
    raters: list[User],
    name: str,
    up: int,
    down: int,
    *,
    shared: bool,
) -> None:
    sample = await make_sample(session, user=author, chat=chat, seed=f"seed {name}", text=f"text {name}")
    for i, rater in enumerate(raters[: up + down]):
        await repo.rate(session, sample_id=sample.id, user_id=rater.id, score=1 if i < up else -1)
    await repo.set_shared(session, sample_id=sample.id, shared=shared)


async def _duel(
    session: AsyncSession,
    author: User,
    chat: Chat,
    voters: list[User],
    name: str,
    outcomes: list[str],
    *,
    counted: bool = True,
) -> None:
    duel = await dr.record_duel(
        session,
        user_id=author.id,
        chat_id=chat.id,
        private=chat.type == "private",
        seed=f"duel {name}",
        length=20,
        a=dr.Side(dr.Arm("m", 0.2), "v1", 11, f"A of {name}"),
        b=dr.Side(dr.Arm("n", 1.2), "v2", 22, f"B of {name}"),
        update_id=None,
    )
    for voter, outcome in zip(voters, outcomes, strict=False):
        await dr.cast_vote(
            session,
            duel=duel,
            user_id=voter.id,
            outcome=Outcome(outcome),
            min_delay_s=0 if counted else 3600,
            daily_cap=100,
        )


async def _seed(db: Database) -> int:
    async def work(session: AsyncSession) -> int:
        author = await make_user(session)
        raters = [await make_user(session) for _ in range(4)]
        group = await make_chat(session)
        private = await make_chat(session, telegram_id=author.telegram_id, type="private", title=None)
        await _rated(session, author, group, raters, "liked", 2, 0, shared=True)
        await _rated(session, author, group, raters, "disliked", 1, 2, shared=True)
        await _rated(session, author, group, raters, "tied", 1, 1, shared=True)
        await _rated(session, author, private, raters, "secret", 3, 0, shared=False)
        await _duel(session, author, group, raters, "a wins", ["a", "a", "b"])
        await _duel(session, author, group, raters, "tie and bad", ["tie", "bad"])
        await _duel(session, author, group, raters, "even", ["a", "b"])
        await _duel(session, author, group, raters, "too fast", ["b"], counted=False)
        await _duel(session, author, private, raters, "private b", ["b"])
        return int(author.telegram_id)

    return int(await db.run(work))


async def _export(db: Database, **options: Any) -> list[dict[str, Any]]:
    out = io.StringIO()

    async def work(session: AsyncSession) -> int:
        return await write_preferences(session, out, **options)

    count = await db.run(work, write=False)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(rows) == count
    return rows


async def test_kto_rows(db: Database) -> None:
    author = await _seed(db)
    rows = await _export(db, format="kto", salt="s")
    assert [list(r) for r in rows] == [KTO_FIELDS, KTO_FIELDS]
    assert [(r["prompt"], r["completion"], r["label"]) for r in rows] == [
        ("seed liked", "text liked", True),
        ("seed disliked", "text disliked", False),
    ]
    first = rows[0]
    assert (first["model"], first["model_version"], first["temperature"], first["rng_seed"]) == (
        "nietzsche-char",
        "1",
        0.5,
        42,
    )
    assert first["user"] == user_hash(author, "s") and str(author) not in json.dumps(rows)
    strict = await _export(db, format="kto", strict=True)
    assert [r["prompt"] for r in strict] == ["seed liked"]
    everything = await _export(db, format="kto", include_private=True, include_users=True)
    assert [r["prompt"] for r in everything] == ["seed liked", "seed disliked", "seed secret"]
    assert {r["user_telegram_id"] for r in everything} == {author} and "user" not in everything[0]


async def test_dpo_rows(db: Database) -> None:
    await _seed(db)
    (row,) = await _export(db, format="dpo")
    assert list(row) == DPO_FIELDS
    assert (row["prompt"], row["chosen"], row["rejected"]) == ("duel a wins", "A of a wins", "B of a wins")
    assert [row[f"chosen_{k}"] for k in SIDE] == ["m", "v1", 0.2, 11]
    assert [row[f"rejected_{k}"] for k in SIDE] == ["n", "v2", 1.2, 22]
    assert (row["chosen_votes"], row["rejected_votes"]) == (2, 1)
    both = await _export(db, format="dpo", include_private=True)
    assert [(r["prompt"], r["chosen"]) for r in both] == [
        ("duel a wins", "A of a wins"),
        ("duel private b", "B of private b"),
    ]


async def test_cli_kto_and_dpo(
    db: Database, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _seed(db)
    out = tmp_path / "kto.jsonl"
    argv = ["export", "--format", "kto", "--strict", "--database-url", database_url, "--out", str(out)]
    assert await asyncio.to_thread(cli.main, argv) == 0
    assert [json.loads(line)["completion"] for line in out.read_text().splitlines()] == ["text liked"]
    assert "exported 1 rated samples" in capsys.readouterr().err
    argv = ["export", "--format", "dpo", "--include-private", "--database-url", database_url]
    assert await asyncio.to_thread(cli.main, argv) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2 and "exported 2 duel preferences" in captured.err
    # With inline picks the rows are not all duels, and the count says so (second newcomer pass).
    assert await asyncio.to_thread(cli.main, [*argv, "--inline-picks"]) == 0
    assert "preferences (duels and inline picks)" in capsys.readouterr().err
    # A misspelt --model exports nothing, and says which filter matched nothing.
    assert await asyncio.to_thread(cli.main, [*argv, "--model", "nosuch"]) == 0
    assert "nothing matched --model 'nosuch'" in capsys.readouterr().err


async def test_an_export_into_a_closed_pipe_is_no_failure(db: Database, database_url: str) -> None:
    """`lstmbot export | head -c 10` exited 2 with "Broken pipe" (operator pass): the reader
    stopping early is not a failed export."""
    import subprocess
    import sys

    await _seed(db)

    def run() -> tuple[int, str]:
        argv = [sys.executable, "-m", "cli", "export", "--format", "jsonl", "--database-url", database_url]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # the reader is gone before the first row is written
        err = process.stderr.read()
        return process.wait(timeout=60), err

    code, err = await asyncio.to_thread(run)
    assert code == 0 and "Broken pipe" not in err and "Traceback" not in err, err


async def test_csv_and_jsonl_carry_the_shared_flag(db: Database) -> None:
    from bot.db.export import export_fields, write_export

    await _seed(db)
    assert export_fields()[-1] == "shared"
    out = io.StringIO()

    async def work(session: AsyncSession) -> int:
        return await write_export(session, out, format="jsonl")

    await db.run(work, write=False)
    shared = {json.loads(line)["seed"]: json.loads(line)["shared"] for line in out.getvalue().splitlines()}
    assert shared == {"seed liked": True, "seed disliked": True, "seed tied": True, "seed secret": False}


async def _inline_pick(
    session: AsyncSession, author: User, name: str, chosen: int, *, shared: bool, model: str = "m"
) -> None:
    candidates = [
        {"temperature": t, "text": f"{name} at {t}", "rng_seed": i, "length": 9}
        for i, t in enumerate((0.3, 0.5, 0.8))
    ]
    offer_id = await repo.create_inline_offer(
        session,
        user_id=author.id,
        seed=f"inline {name}",
        model_name=model,
        model_version="v7",
        candidates=candidates,
    )
    offer = await repo.take_inline_offer(session, offer_id=offer_id, user_id=author.id)
    assert offer is not None
    chat = await make_chat(session, telegram_id=author.telegram_id, type="private", title=None)
    picked = candidates[chosen]
    sample = await make_sample(
        session, user=author, chat=chat, seed=offer.seed, model_name=model, text=str(picked["text"])
    )
    await repo.set_shared(session, sample_id=sample.id, shared=shared)
    offer.chosen, offer.sample_id = chosen, sample.id


async def test_inline_picks_are_dpo_rows(db: Database) -> None:
    async def work(session: AsyncSession) -> None:
        author = await make_user(session)
        await _inline_pick(session, author, "sent", 1, shared=True)
        await _inline_pick(session, author, "kept private", 0, shared=False)
        await repo.create_inline_offer(  # nothing chosen from it: no preference
            session, user_id=author.id, seed="unpicked", model_name="m", model_version="v7", candidates=[]
        )

    await db.run(work)
    assert await _export(db, format="dpo") == []  # duels only unless asked
    rows = await _export(db, format="dpo", inline=True, salt="s")
    assert [(r["prompt"], r["chosen"], r["rejected"]) for r in rows] == [
        ("inline sent", "sent at 0.5", "sent at 0.3"),
        ("inline sent", "sent at 0.5", "sent at 0.8"),
    ]
    assert [rows[0][f"chosen_{k}"] for k in SIDE] == ["m", "v7", 0.5, 1]
    assert [rows[0][f"rejected_{k}"] for k in SIDE] == ["m", "v7", 0.3, 0]
    assert "inline_offer_id" in rows[0] and "user" in rows[0]
    everything = await _export(db, format="dpo", inline=True, include_private=True)
    assert [r["prompt"] for r in everything] == ["inline sent"] * 2 + ["inline kept private"] * 2


async def test_the_scope_keeps_one_model_and_a_time_window(db: Database) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from bot.db.models import StoredSample, utcnow
    from bot.db.preference_export import Scope, write_learning_rows

    await _seed(db)

    async def more(session: AsyncSession) -> None:
        author = await make_user(session)
        raters = [await make_user(session) for _ in range(2)]
        group = await make_chat(session)
        await _rated(session, author, group, raters, "other model", 2, 0, shared=True)
        await _inline_pick(session, author, "picked", 2, shared=True, model="nietzsche-char")
        rename = update(StoredSample).where(StoredSample.seed == "seed other model")
        await session.execute(rename.values(model_name="other"))

    await db.run(more)
    now = utcnow()
    mine = Scope(model_name="nietzsche-char")
    assert [r["prompt"] for r in await _export(db, format="kto", scope=mine)] == [
        "seed liked",
        "seed disliked",
    ]
    # Duels count for a model only with it on both sides (_duel's are "m" against "n").
    assert await _export(db, format="dpo", scope=mine) == []
    later = Scope(since=now + timedelta(seconds=1))
    assert await _export(db, format="kto", scope=later) == []
    earlier = Scope(until=now - timedelta(hours=1))
    assert await _export(db, format="dpo", inline=True, scope=earlier) == []
    window = Scope(since=now - timedelta(hours=1), until=now + timedelta(seconds=1))
    assert len(await _export(db, format="kto", scope=window)) == 3

    out = io.StringIO()

    async def learn(session: AsyncSession) -> Any:
        return await write_learning_rows(session, out, scope=mine, salt="s")

    gathered = await db.run(learn, write=False)
    assert gathered.as_dict() == {
        "rows": 4, "ratings": 2, "liked": 1, "disliked": 1, "duels": 0, "inline_picks": 2,
    }  # fmt: skip
    assert len(out.getvalue().splitlines()) == 4
