"""Ratings and the vote counters they keep in step (see the package docstring for the locking)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    DOWN,
    UP,
    Rating,
    StoredSample,
    utcnow,
)
from bot.db.repository.base import NotFound, check_score, dialect_insert


@dataclass(frozen=True, slots=True)
class Votes:
    """A sample's rating aggregate."""

    up: int
    down: int

    @property
    def net(self) -> int:
        """Up-votes minus down-votes."""
        return self.up - self.down

    @property
    def total(self) -> int:
        """How many people rated it."""
        return self.up + self.down


@dataclass(frozen=True, slots=True)
class RatingState:
    """The result of a rating action: this user's score now and the sample's counts."""

    sample_id: int
    score: int | None  # +1, -1, or None when the user has no rating on it now
    votes: Votes
    changed: bool  # False when the click repeated the current state (idempotent no-op)


async def _lock_sample(session: AsyncSession, sample_id: int) -> None:
    """Take the sample's row lock for the rest of the transaction; NotFound when it is gone.

    FOR NO KEY UPDATE (PostgreSQL) serialises raters of one sample without blocking inserts
    that merely reference it; SQLite ignores the clause (its write lock is database-wide).
    """
    stmt = select(StoredSample.id).where(StoredSample.id == sample_id).with_for_update(key_share=True)
    if await session.scalar(stmt) is None:
        raise NotFound(f"no sample with id {sample_id}")


async def _count_votes(session: AsyncSession, sample_id: int) -> Votes:
    stmt = select(func.count().filter(Rating.score == UP), func.count().filter(Rating.score == DOWN)).where(
        Rating.sample_id == sample_id
    )
    up, down = (await session.execute(stmt)).one()
    return Votes(int(up), int(down))


async def _store_votes(session: AsyncSession, sample_id: int, votes: Votes) -> None:
    # Literal values (not a subquery) so the ORM can update a loaded StoredSample in place.
    await session.execute(
        update(StoredSample)
        .where(StoredSample.id == sample_id)
        .values(up_votes=votes.up, down_votes=votes.down)
    )


async def recount_votes(session: AsyncSession, *, sample_ids: Iterable[int]) -> None:
    """Recompute the stored counters of these samples from their ratings."""
    for sample_id in sorted(set(sample_ids)):
        await _store_votes(session, sample_id, await _count_votes(session, sample_id))


async def get_votes(session: AsyncSession, *, sample_id: int) -> Votes:
    """A sample's up/down counts (one primary-key lookup); NotFound when it is gone."""
    row = (
        await session.execute(
            select(StoredSample.up_votes, StoredSample.down_votes).where(StoredSample.id == sample_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"no sample with id {sample_id}")
    return Votes(int(row[0]), int(row[1]))


async def _user_score(session: AsyncSession, *, sample_id: int, user_id: int) -> int | None:
    """This user's score on a sample (+1/-1), or None when they have not rated it."""
    return await session.scalar(
        select(Rating.score).where(Rating.sample_id == sample_id, Rating.user_id == user_id)
    )


async def _set_score(
    session: AsyncSession, *, sample_id: int, user_id: int, score: int | None, toggle: bool
) -> RatingState:
    await _lock_sample(session, sample_id)
    # Under the lock (and, on PostgreSQL, in a statement snapshot taken after it) this read is
    # the latest committed state, so the decision below cannot race another click.
    current = await _user_score(session, sample_id=sample_id, user_id=user_id)
    target = None if toggle and current == score else score
    if target == current:
        return RatingState(sample_id, current, await get_votes(session, sample_id=sample_id), False)
    if target is None:
        await session.execute(delete(Rating).where(Rating.sample_id == sample_id, Rating.user_id == user_id))
    else:
        stmt = dialect_insert(session, Rating).values(
            sample_id=sample_id, user_id=user_id, score=target, rated_at=utcnow()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[Rating.sample_id, Rating.user_id],
            set_={"score": stmt.excluded.score, "rated_at": stmt.excluded.rated_at},
        )
        await session.execute(stmt)
    votes = await _count_votes(session, sample_id)
    await _store_votes(session, sample_id, votes)
    return RatingState(sample_id, target, votes, True)


async def rate(session: AsyncSession, *, sample_id: int, user_id: int, score: int) -> RatingState:
    """Set this user's rating of a sample to ``score`` (+1/-1); repeating it changes nothing."""
    return await _set_score(
        session, sample_id=sample_id, user_id=user_id, score=check_score(score), toggle=False
    )


async def toggle_rating(session: AsyncSession, *, sample_id: int, user_id: int, score: int) -> RatingState:
    """Keyboard semantics: pressing the button matching the current rating withdraws it,
    any other press sets the rating to ``score``."""
    return await _set_score(
        session, sample_id=sample_id, user_id=user_id, score=check_score(score), toggle=True
    )
