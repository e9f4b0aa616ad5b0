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
