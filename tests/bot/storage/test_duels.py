"""Duels in the database: pair choice, votes (early, changed, capped), migration 0005."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

import migrations
from bot.db.database import Database
from bot.db.engine import create_engine
from bot.db.models import Duel, utcnow
from bot.db.outcomes import Outcome, Vote
from bot.db.repository import duels as dr
from tests.bot.storage.factories import make_chat, make_user

ARMS = dr.arms_for(["m"], [0.2, 0.5, 1.0])


def test_choose_pair_takes_the_least_voted_pair_in_random_order() -> None:
    counts = {
        frozenset({ARMS[0], ARMS[1]}): 3,
        frozenset({ARMS[0], ARMS[2]}): 1,
        frozenset({ARMS[1], ARMS[2]}): 2,
    }
    seen = {dr.choose_pair(ARMS, counts, random.Random(i)) for i in range(40)}
    assert seen == {(ARMS[0], ARMS[2]), (ARMS[2], ARMS[0])}
    # No votes at all: every pair comes up.
    fresh = {frozenset(dr.choose_pair(ARMS, {}, random.Random(i))) for i in range(60)}
    assert len(fresh) == 3


async def _duel(session: AsyncSession, *, sent_ago_s: float) -> tuple[int, Duel]:
    user = await make_user(session)
    chat = await make_chat(session)
    duel = await dr.record_duel(
        session,
        user_id=user.id,
        chat_id=chat.id,
        private=False,
        seed="the ",
        length=20,
        a=dr.Side(ARMS[0], "1", 1, "aaa"),
        b=dr.Side(ARMS[2], "1", 2, "bbb"),
        update_id=5,
    )
    await dr.set_duel_message(
        session, duel_id=duel.id, message_id=77, sent_at=utcnow() - timedelta(seconds=sent_ago_s)
    )
    return user.id, duel


async def test_votes_early_changed_and_capped(db: Database) -> None:
    async def work(session: AsyncSession) -> None:
        user_id, duel = await _duel(session, sent_ago_s=0.5)
        early = await dr.cast_vote(
            session, duel=duel, user_id=user_id, outcome=Outcome.A, min_delay_s=2, daily_cap=5
        )
        assert (early.counted, early.early, early.changed) == (False, True, False)
        assert await dr.counted_votes(session) == []
        later = utcnow() + timedelta(seconds=3)
        changed = await dr.cast_vote(
            session, duel=duel, user_id=user_id, outcome=Outcome.B, min_delay_s=2, daily_cap=5, now=later
        )
        assert (changed.counted, changed.changed) == (True, True)
        assert await dr.counted_votes(session) == [Vote("m@0.2", "m@1", Outcome.B)]
        # Blind duels: a counted vote was answered with the arms, so it is final.
        again = await dr.cast_vote(
            session, duel=duel, user_id=user_id, outcome=Outcome.A, min_delay_s=2, daily_cap=5, now=later
        )
        assert (again.final, again.outcome, again.changed) == (True, Outcome.B, False)
        assert await dr.counted_votes(session) == [Vote("m@0.2", "m@1", Outcome.B)]
        assert await dr.pair_counts(session) == {frozenset({ARMS[0], ARMS[2]}): 1}
        assert duel.update_id == 5  # a redelivered /duel is recognised by its claimed update
        origin = await dr.get_duel_origin(session, duel_id=duel.id)
        assert origin is not None and origin.duel.telegram_message_id == 77
        # Cap: a second user with a cap of 1 gets one counted vote, then stored-only ones.
        other_id, second = await _duel(session, sent_ago_s=10)
        _, third = await _duel(session, sent_ago_s=10)
        first = await dr.cast_vote(
            session, duel=second, user_id=other_id, outcome=Outcome.TIE, min_delay_s=2, daily_cap=1
        )
        over = await dr.cast_vote(
            session, duel=third, user_id=other_id, outcome=Outcome.BOTH_BAD, min_delay_s=2, daily_cap=1
        )
        assert (first.counted, over.counted, over.capped) == (True, False, True)
        assert len(await dr.counted_votes(session)) == 2

    await db.run(work)


async def test_0005_upgrades_and_downgrades_with_data(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.sqlite3'}"
    await asyncio.to_thread(migrations.upgrade, url, "0004")
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO users (id, telegram_id) VALUES (1, 10)"))
            await conn.execute(text("INSERT INTO chats (id, telegram_id, type) VALUES (1, 10, 'private')"))
        await asyncio.to_thread(migrations.upgrade, url, "0005")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO duels (id, user_id, chat_id, seed, length, model_a, version_a,"
                    " temperature_a, rng_seed_a, text_a, model_b, version_b, temperature_b,"
                    " rng_seed_b, text_b)"
                    " VALUES (1, 1, 1, 's', 5, 'm', '1', 0.2, 1, 'a', 'm', '1', 1.0, 2, 'b')"
                )
            )
            await conn.execute(text("INSERT INTO duel_votes (duel_id, user_id, outcome) VALUES (1, 1, 'a')"))
            row = (
                await conn.execute(text("SELECT private, counted FROM duels JOIN duel_votes ON duel_id = id"))
            ).one()
            assert (bool(row[0]), bool(row[1])) == (False, False)
        await asyncio.to_thread(migrations.downgrade, url, "0004")
        async with engine.connect() as conn:
            names = (
                (await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'")))
                .scalars()
                .all()
            )
            assert "duels" not in names and "duel_votes" not in names
            assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar() == 1
    finally:
        await engine.dispose()
