"""The leaderboard's cache: one computation for many askers, refits only when the data changed,
and looks at the database at most once every `every_s` seconds."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.database import Database
from bot.standings_cache import StandingsCache
from tests.bot.storage.factories import make_world


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def add_a_liked_sample(db: Database) -> None:
    async def work(session: AsyncSession) -> None:
        _, _, sample = await make_world(session)
        sample.up_votes = 1

    await db.run(work)


async def test_many_askers_at_once_share_one_computation(db: Database) -> None:
    cache = StandingsCache(db, "title")
    shown = await asyncio.gather(*(cache.get() for _ in range(10)))
    assert cache.computed == 1 and all(s is shown[0] for s in shown)
    assert shown[0].standings.board == [] and shown[0].chart is None


async def test_a_change_is_seen_after_every_s_and_no_change_costs_no_refit(db: Database) -> None:
    clock = Clock()
    cache = StandingsCache(db, "title", every_s=5.0, clock=clock)
    first = await cache.get()
    await add_a_liked_sample(db)
    clock.now += 4.9
    assert await cache.get() is first  # within the interval: not even a version read
    clock.now += 0.2
    second = await cache.get()
    assert cache.computed == 2 and second is not first
    assert [(t.temperature, t.up) for t in second.standings.thumbs] == [(0.5, 1)]
    assert second.chart is not None and second.chart[:4] == b"\x89PNG"
    clock.now += 60
    assert await cache.get() is second and cache.computed == 2  # same version: no refit
