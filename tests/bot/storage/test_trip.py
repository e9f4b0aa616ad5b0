"""Trip units (bot/db/trip.py): what a trip stores is what a session stores, a failed trip leaves
nothing behind and raises SQLAlchemy's error, and SQLite's compiled statements handle lists,
literal values and column defaults as SQLAlchemy does."""

from __future__ import annotations

import asyncio
import sqlite3
from functools import partial
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repository as repo
from bot.db.database import Database
from bot.db.engine import sqlite_file
from bot.db.models import Chat, SampleClaim, StoredSample, User
from bot.db.repository import claims
from bot.db.repository.base import table_of
from bot.db.trip import MAX_CACHED, SqliteStatements, Trip
from core.novelty import Novelty
from tests.bot.storage.factories import make_chat, make_user

FIELDS: dict[str, Any] = {
    "seed": "the free spirit ",
    "model_name": "nietzsche-char",
    "model_version": "20261124024534",
    "temperature": 0.7,
    "length": 400,
    "text": "is one who thinks otherwise — «than» he is expected to 思",
    "generation_ms": 31,
    "rng_seed": -(2**62),
    "update_id": 9_000_000_001,
    "novelty": Novelty(longest_copied=12, new_ngram_share=0.81234),
    "acrostic": "新年快乐|7",
    "shown_length": 398,
}


async def _owner(db: Database) -> tuple[int, int]:
    async def work(session: AsyncSession) -> tuple[int, int]:
        user, chat = await make_user(session), await make_chat(session)
        return user.id, chat.id

    return await db.run(work)


def _columns(sample: StoredSample) -> dict[str, Any]:
    skip = {"id", "created_at", "update_id"}
    return {c.key: getattr(sample, c.key) for c in StoredSample.__table__.columns if c.key not in skip}


async def test_a_sample_stored_by_a_trip_reads_back_as_one_stored_in_a_session(db: Database) -> None:
    user_id, chat_id = await _owner(db)
    by_trip = await db.run_trip(partial(repo.insert_sample, user_id=user_id, chat_id=chat_id, **FIELDS))
    in_session = await db.run(
        lambda session: repo.record_sample(
            session, user_id=user_id, chat_id=chat_id, **{**FIELDS, "update_id": FIELDS["update_id"] + 1}
        )
    )

    async def both(session: AsyncSession) -> list[StoredSample]:
        rows = await session.scalars(select(StoredSample).where(StoredSample.id.in_([by_trip, in_session])))
        return sorted(rows, key=lambda sample: sample.id)

    first, second = await db.run(both, write=False)
    assert (first.id, second.id) == (by_trip, in_session)
    assert _columns(first) == _columns(second)
    assert first.new_ngram_share == 0.8123 and first.delivered is False and first.up_votes == 0
    assert first.update_id == FIELDS["update_id"]
    # the default creation time, filled in alike (SQLAlchemy's own format on SQLite)
    assert first.created_at.tzinfo == second.created_at.tzinfo
    assert abs((second.created_at - first.created_at).total_seconds()) < 60
    if db.dialect == "sqlite":
        raw = text("SELECT created_at FROM samples ORDER BY id")
        stored = [row[0] for row in await db.run(lambda s: s.execute(raw), write=False)]
        assert [len(value) for value in stored] == [26, 26]  # "YYYY-MM-DD HH:MM:SS.ffffff"


async def test_the_askers_rows_read_in_a_trip_are_the_rows_a_session_loads(db: Database) -> None:
    async def stored(session: AsyncSession) -> tuple[User, Chat]:
        user = await make_user(session, telegram_id=5, language_code="zh-hans")
        user.temperature, user.model_name, user.length_word = 1.2, "hongloumeng-word", 77
        chat = await make_chat(session, telegram_id=-5, type="group", title="Zarathustra’s «cave»")
        chat.temperature = 0.3
        return user, chat

    user, chat = await db.run(stored)
    rows = await db.run_trip(
        partial(repo.asker, user_telegram_id=5, chat_telegram_id=-5, update_id=None), write=False
    )
    assert rows.user is not None and rows.chat is not None and not rows.handled
    for model, loaded, read in ((User, user, rows.user), (Chat, chat, rows.chat)):
        for column in model.__table__.columns:
            assert getattr(read, column.key) == getattr(loaded, column.key), column.key
            assert type(getattr(read, column.key)) is type(getattr(loaded, column.key)), column.key
    await db.run_trip(partial(repo.claim, update_id=6))
    rows = await db.run_trip(
        partial(repo.asker, user_telegram_id=5, chat_telegram_id=None, update_id=6), write=False
    )
    assert rows.handled and rows.chat is None and rows.user is not None
    rows = await db.run_trip(
        partial(repo.asker, user_telegram_id=8, chat_telegram_id=8, update_id=6), write=False
    )
    assert (rows.handled, rows.user, rows.chat) == (True, None, None)  # a newcomer: two statements


async def test_a_failed_trip_stores_nothing_and_raises_sqlalchemys_error(db: Database) -> None:
    user_id, chat_id = await _owner(db)
    sample_id = await db.run_trip(partial(repo.insert_sample, user_id=user_id, chat_id=chat_id, **FIELDS))

    def twice(trip: Trip) -> None:
        repo.insert_sample(trip, user_id=user_id, chat_id=chat_id, **{**FIELDS, "update_id": 1})
        claims.claim_new(trip, sample_id=sample_id, replica="r1")
        claims.claim_new(trip, sample_id=sample_id, replica="r2")  # the primary key again

    with pytest.raises(IntegrityError):
        await db.run_trip(twice)

    def broken(trip: Trip) -> None:
        repo.insert_sample(trip, user_id=user_id, chat_id=chat_id, **{**FIELDS, "update_id": 2})
        raise RuntimeError("the unit failed")

    with pytest.raises(RuntimeError):
        await db.run_trip(broken)
    count = select(StoredSample.id).order_by(StoredSample.id)
    assert list(await db.run(lambda s: s.scalars(count), write=False)) == [sample_id]
    # the connection is still good for the next trip
    assert await db.run_trip(partial(repo.claim, update_id=77))
    assert not await db.run_trip(partial(repo.claim, update_id=77))


async def test_a_trip_takes_lists_and_counts_what_it_matched(db: Database) -> None:
    user_id, chat_id = await _owner(db)
    ids = [
        await db.run_trip(
            partial(repo.insert_sample, user_id=user_id, chat_id=chat_id, **{**FIELDS, "update_id": n})
        )
        for n in range(3)
    ]
    for sample_id in ids:
        await db.run_trip(partial(claims.claim_new, sample_id=sample_id, replica="r1"))
    assert await db.run_trip(partial(claims.attempt, sample_ids=ids[:2], replica="r1"))
    assert not await db.run_trip(partial(claims.attempt, sample_ids=ids, replica="r2"))  # not r2's
    await db.run_trip(partial(repo.mark_uncertain, sample_ids=ids[1:]))

    async def state(session: AsyncSession) -> tuple[list[bool], list[bool]]:
        uncertain = await session.scalars(select(StoredSample.send_uncertain).order_by(StoredSample.id))
        started = await session.scalars(
            select(SampleClaim.attempted_at.is_not(None)).order_by(SampleClaim.sample_id)
        )
        return list(uncertain), list(started)

    assert await db.run(state, write=False) == ([False, True, True], [True, True, False])


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's one write lock
async def test_a_write_trip_waits_for_another_processs_lock_and_reads_go_on(db: Database) -> None:
    path = sqlite_file(db.engine.url)
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process writing
    claimed = asyncio.ensure_future(db.run_trip(partial(repo.claim, update_id=5)))
    await asyncio.sleep(0.3)
    assert not claimed.done()
    # Reads have a connection of their own: the waiting write holds none of them up.
    read = partial(repo.asker, user_telegram_id=1, chat_telegram_id=None, update_id=5)
    assert await asyncio.wait_for(db.run_trip(read, write=False), 2) == repo.AskerRows(False, None, None)
    assert not claimed.done()
    other.execute("COMMIT")
    assert await asyncio.wait_for(claimed, 10)
    other.close()


@pytest.mark.parametrize("backend", ["sqlite"])  # compiled for SQLite
def test_sqlite_statements_fill_in_literals_and_defaults_as_sqlalchemy_does(db: Database) -> None:
    statements = SqliteStatements(db.engine.dialect)
    claims_table = table_of(SampleClaim)
    statement = insert(claims_table).values(sample_id=bindparam("claimed"), replica="r9")
    _, sql, values = statements.prepare(statement, {"claimed": 4})
    assert sql.count("?") == len(values) == 3  # sample_id, replica and claimed_at's default
    assert values[:2] == [4, "r9"] and isinstance(values[2], str) and len(values[2]) == 26
    assert statements.compiled(statement, frozenset({"claimed"})) is statements.compiled(
        statement, frozenset({"claimed"})
    )
    in_list = select(claims_table.c.replica).where(
        claims_table.c.sample_id.in_(bindparam("ids", expanding=True))
    )
    _, sql, values = statements.prepare(in_list, {"ids": [1, 2, 3]})
    assert sql.endswith("IN (?, ?, ?)") and values == [1, 2, 3]
    with pytest.raises(ValueError, match="empty list"):
        statements.prepare(in_list, {"ids": []})
    # Statements built per call do not pile up.
    for n in range(600):
        statements.prepare(select(claims_table.c.replica).where(claims_table.c.sample_id == n), {})
    assert len(statements._cache) <= MAX_CACHED
