"""Concurrent duel votes by one user: one row per duel, and the daily cap holds under a burst.

Each press runs as its own unit of work (``Database.run``), as the vote handler's does, so on
PostgreSQL the presses really overlap in separate transactions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.database import Database
from bot.db.models import Duel, DuelVote, utcnow
from bot.db.outcomes import Outcome
from bot.db.repository import duels as dr
from tests.bot.storage.factories import make_chat, make_user

ARM_A = dr.Arm("m", 0.2)
ARM_B = dr.Arm("m", 1.0)


async def _voter_and_duels(db: Database, n: int) -> tuple[int, list[int]]:
    """A voter and ``n`` duels sent a minute ago (long enough to be read)."""
    async with db.sessions() as session:
        user = await make_user(session)
        chat = await make_chat(session)
        duel_ids = []
        for _ in range(n):
            duel = await dr.record_duel(
                session,
                user_id=user.id,
                chat_id=chat.id,
                private=False,
                seed="the ",
                length=20,
                a=dr.Side(ARM_A, "1", 1, "aaa"),
                b=dr.Side(ARM_B, "1", 2, "bbb"),
                update_id=None,
            )
            await dr.set_duel_message(
                session, duel_id=duel.id, message_id=duel.id, sent_at=utcnow() - timedelta(minutes=1)
            )
            duel_ids.append(duel.id)
        await session.commit()
        return user.id, duel_ids


def _press(
    duel_id: int, user_id: int, outcome: Outcome, *, min_delay_s: float, daily_cap: int
) -> Callable[[AsyncSession], Awaitable[dr.VoteResult]]:
    """The vote handler's unit of work: load the duel, cast the vote."""

    async def work(session: AsyncSession) -> dr.VoteResult:
        duel = await session.get(Duel, duel_id)
        assert duel is not None
        return await dr.cast_vote(
            session, duel=duel, user_id=user_id, outcome=outcome, min_delay_s=min_delay_s, daily_cap=daily_cap
        )

    return work


async def _votes(db: Database, user_id: int) -> list[DuelVote]:
    async with db.sessions() as session:
        return list((await session.scalars(select(DuelVote).where(DuelVote.user_id == user_id))).all())


@pytest.mark.parametrize("min_delay_s", [0.0, 3600.0], ids=["counted", "early"])
async def test_many_presses_on_one_duel_leave_one_vote(db: Database, min_delay_s: float) -> None:
    """Quick presses by one user on one duel: no error, one row. Read in time, exactly one
    press counts and the others find it final; too early, every press is stored uncounted."""
    user_id, (duel_id,) = await _voter_and_duels(db, 1)
    outcomes = [Outcome.A, Outcome.B, Outcome.TIE, Outcome.BOTH_BAD]
    results = await asyncio.gather(
        *(
            db.run(_press(duel_id, user_id, outcomes[i % 4], min_delay_s=min_delay_s, daily_cap=5))
            for i in range(20)
        )
    )
    (vote,) = await _votes(db, user_id)
    if min_delay_s:
        assert not vote.counted and all(not r.counted and r.early for r in results)
    else:
        assert vote.counted
        fresh = [r for r in results if not r.final]
        assert len(fresh) == 1 and fresh[0].counted and fresh[0].outcome.value == vote.outcome
        # Every later press was told the verdict that stands.
        assert all(r.outcome.value == vote.outcome for r in results)


async def test_burst_of_first_votes_keeps_the_daily_cap(db: Database) -> None:
    """First votes by one user on 8 duels at once with a cap of 3: exactly 3 count."""
    user_id, duel_ids = await _voter_and_duels(db, 8)
    results = await asyncio.gather(
        *(db.run(_press(d, user_id, Outcome.A, min_delay_s=0, daily_cap=3)) for d in duel_ids)
    )
    votes = await _votes(db, user_id)
    assert len(votes) == 8
    assert sum(v.counted for v in votes) == 3
    assert sum(r.counted for r in results) == 3 and sum(r.capped for r in results) == 5
    async with db.sessions() as session:
        assert await dr.counted_today(session, user_id=user_id, now=utcnow()) == 3
        assert await session.scalar(select(func.count()).select_from(DuelVote)) == 8
