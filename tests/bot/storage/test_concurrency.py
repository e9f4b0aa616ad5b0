"""Many handlers at once: no duplicate rows, no errors reaching a user, counters in step."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repository as repo
from bot.db.database import Database
from bot.db.models import DOWN, UP, Chat, Rating, StoredSample, User
from tests.bot.storage.factories import make_sample, make_world, next_telegram_id


async def _world(db: Database) -> tuple[int, int, int]:
    async with db.sessions() as session:
        user, chat, sample = await make_world(session)
        await session.commit()
        return user.id, chat.id, sample.id


def _click(
    telegram_id: int, sample_id: int, score: int, *, toggle: bool = False
) -> Callable[[AsyncSession], Awaitable[repo.RatingState]]:
    """A rating handler's unit of work: register the clicker, then rate."""

    async def work(session: AsyncSession) -> repo.RatingState:
        user = await repo.get_or_create_user(session, telegram_id=telegram_id, display_name="x")
        action = repo.toggle_rating if toggle else repo.rate
        return await action(session, sample_id=sample_id, user_id=user.id, score=score)

    return work


async def _ratings(db: Database, sample_id: int) -> tuple[int, repo.Votes]:
    async with db.sessions() as session:
        rows = await session.scalar(
            select(func.count()).select_from(Rating).where(Rating.sample_id == sample_id)
        )
        return int(rows or 0), await repo.get_votes(session, sample_id=sample_id)


async def test_fifty_raters_at_once(db: Database) -> None:
    _, _, sample_id = await _world(db)
    raters = [next_telegram_id() for _ in range(50)]
    states = await asyncio.gather(
        *(db.run(_click(tg, sample_id, UP if i % 3 else DOWN)) for i, tg in enumerate(raters))
    )
    assert all(state.changed for state in states)
    downs = sum(1 for i in range(50) if i % 3 == 0)
    assert await _ratings(db, sample_id) == (50, repo.Votes(50 - downs, downs))
    # Every clicker saw a consistent count: each result includes their own vote.
    assert all(1 <= state.votes.total <= 50 for state in states)


async def test_one_user_clicking_repeatedly(db: Database) -> None:
    _, _, sample_id = await _world(db)
    tg = next_telegram_id()
    states = await asyncio.gather(*(db.run(_click(tg, sample_id, UP)) for _ in range(30)))
    assert sum(state.changed for state in states) == 1  # the same click counts once
    assert all(state.score == UP and state.votes == repo.Votes(1, 0) for state in states)
    assert await _ratings(db, sample_id) == (1, repo.Votes(1, 0))
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).where(User.telegram_id == tg)) == 1


async def test_toggle_storm_keeps_parity(db: Database) -> None:
    """20 toggles of one button: each flips the state, so an even number ends unrated."""
    _, _, sample_id = await _world(db)
    tg = next_telegram_id()
    states = await asyncio.gather(*(db.run(_click(tg, sample_id, DOWN, toggle=True)) for _ in range(20)))
    assert all(state.changed for state in states)
    assert sorted(state.score is None for state in states) == [False] * 10 + [True] * 10
    assert await _ratings(db, sample_id) == (0, repo.Votes(0, 0))


async def test_mixed_storm(db: Database) -> None:
    """50 raters, one user hammering both buttons, and writers adding samples, all at once."""
    user_id, chat_id, sample_id = await _world(db)
    raters = [next_telegram_id() for _ in range(50)]
    hammer = next_telegram_id()

    async def new_sample(session: AsyncSession) -> int:
        author = await session.get(User, user_id)
        chat = await session.get(Chat, chat_id)
        assert author is not None and chat is not None
        return (await make_sample(session, user=author, chat=chat)).id

    jobs: list[Awaitable[object]] = [db.run(_click(tg, sample_id, UP)) for tg in raters]
    jobs += [db.run(_click(hammer, sample_id, UP if i % 2 else DOWN)) for i in range(20)]
    jobs += [db.run(new_sample) for _ in range(20)]
    results = await asyncio.gather(*jobs)
    rows, votes = await _ratings(db, sample_id)
    assert rows == 51 and votes.total == 51 and votes.up in (50, 51)
    assert len(set(results[-20:])) == 20
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(StoredSample)) == 21
        # Counters equal the rows for every sample.
        for sample in (await session.scalars(select(StoredSample))).all():
            mine = select(func.count()).where(Rating.sample_id == sample.id)
            up = await session.scalar(mine.where(Rating.score == UP))
            down = await session.scalar(mine.where(Rating.score == DOWN))
            assert (sample.up_votes, sample.down_votes) == (up, down)


async def test_new_user_racing_itself(db: Database) -> None:
    tg = next_telegram_id()

    async def work(session: AsyncSession) -> int:
        return (await repo.get_or_create_user(session, telegram_id=tg, display_name="Racer")).id

    ids = await asyncio.gather(*(db.run(work) for _ in range(30)))
    assert len(set(ids)) == 1


async def test_writers_in_two_processes(db: Database, database_url: str) -> None:
    """A second engine (as another process would have) shares no in-memory lock with the
    first: the database's own locking (busy timeout, row locks) and retries keep it right."""
    _, _, sample_id = await _world(db)
    other = Database.from_url(database_url)
    try:
        raters = [next_telegram_id() for _ in range(40)]
        hammer = next_telegram_id()
        jobs = [(db if i % 2 else other).run(_click(tg, sample_id, DOWN)) for i, tg in enumerate(raters)]
        jobs += [(db if i % 2 else other).run(_click(hammer, sample_id, UP)) for i in range(10)]
        await asyncio.gather(*jobs)
    finally:
        await other.dispose()
    assert await _ratings(db, sample_id) == (41, repo.Votes(1, 40))
