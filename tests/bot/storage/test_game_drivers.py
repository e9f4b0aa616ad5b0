"""One replica drives each game (issue 24, item 9): the lease on games, taken in one statement."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repository as repo
from bot.db.database import Database
from bot.db.models import Game, utcnow
from tests.bot.storage.factories import make_chat, make_game

LEASE = timedelta(seconds=20)


async def _games(db: Database, count: int, driver: str | None = None) -> list[int]:
    async def work(session: AsyncSession) -> list[int]:
        ids = []
        for _ in range(count):
            game = await make_game(
                session,
                chat=await make_chat(session),
                deadline=utcnow() + timedelta(minutes=5),
                timer_replica=driver,
                timer_until=None if driver is None else utcnow() + LEASE,
            )
            ids.append(game.id)
        return ids

    return list(await db.run(work))


async def _drivers(db: Database, ids: list[int]) -> list[str | None]:
    async def work(session: AsyncSession) -> list[str | None]:
        return list((await session.scalars(select(Game.timer_replica).where(Game.id.in_(ids)))).all())

    return list(await db.run(work, write=False))


async def _drive(
    db: Database, replica: str, *, later: timedelta = timedelta(0), dead: tuple[str, ...] = ()
) -> int:
    async def work(session: AsyncSession) -> int:
        return await repo.drive(session, replica=replica, now=utcnow() + later, lease=LEASE, dead=dead)

    return int(await db.run(work))


async def test_undriven_games_go_to_exactly_one_of_many_replicas(db: Database) -> None:
    ids = await _games(db, 20)
    taken = await asyncio.gather(*(_drive(db, f"r{i}") for i in range(6)))
    assert sorted(taken) == [0] * 5 + [20]  # one statement: one replica wins them all
    assert len(set(await _drivers(db, ids))) == 1


async def test_a_live_lease_is_kept_an_expired_or_dead_drivers_games_are_taken_over(db: Database) -> None:
    ids = await _games(db, 3, driver="r1")
    assert await _drive(db, "r2") == 0 and set(await _drivers(db, ids)) == {"r1"}
    assert await _drive(db, "r1") == 3  # renewing its own lease
    assert await _drive(db, "r2", dead=("r1",)) == 3  # r1 is known dead: no waiting
    assert await _drive(db, "r1") == 0  # r2's lease is live now
    assert await _drive(db, "r1", later=LEASE * 2) == 3  # r2 went silent: its lease ran out
    assert set(await _drivers(db, ids)) == {"r1"}


async def test_a_tick_is_one_query_with_the_votes_of_this_replicas_games(db: Database) -> None:
    mine, theirs = await _games(db, 2, driver="me"), await _games(db, 1, driver="them")

    async def work(session: AsyncSession) -> list[tuple[int, int]]:
        user = await repo.get_or_create_user(session, telegram_id=99, display_name="P")
        await repo.games.guess(session, game_id=mine[0], user_id=user.id, choice="A")
        return [(d.game.id, d.votes) for d in await repo.driven_games(session, replica="me")]

    assert sorted(await db.run(work)) == [(mine[0], 1), (mine[1], 0)]
    drivers = dict(await db.run(repo.game_drivers, write=False))
    assert set(drivers) == {"me", "them"} and theirs
