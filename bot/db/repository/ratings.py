"""Ratings and the vote counters they keep in step (see the package docstring for the locking)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    BUTTON,
    DOWN,
    REACTION,
    UP,
    AnonymousReactions,
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


async def _user_rating(session: AsyncSession, *, sample_id: int, user_id: int) -> tuple[int, str] | None:
    """This user's score on a sample (+1/-1) and what gave it, or None when they have not rated it."""
    stmt = select(Rating.score, Rating.source).where(Rating.sample_id == sample_id, Rating.user_id == user_id)
    row = (await session.execute(stmt)).one_or_none()
    return None if row is None else (int(row[0]), str(row[1]))


async def _set_score(
    session: AsyncSession,
    *,
    sample_id: int,
    user_id: int,
    score: int | None,
    toggle: bool,
    source: str = BUTTON,
    only_own: bool = False,
) -> RatingState:
    """The one rating change, for buttons and reactions alike. ``only_own``: act only on a
    rating ``source`` gave (a removed reaction leaves a button's rating alone)."""
    await _lock_sample(session, sample_id)
    # Under the lock (and, on PostgreSQL, in a statement snapshot taken after it) this read is
    # the latest committed state, so the decision below cannot race another click.
    found = await _user_rating(session, sample_id=sample_id, user_id=user_id)
    current = None if found is None else found[0]
    target = None if toggle and current == score else score
    # A change that agrees with the current score keeps its source: the button that gave it
    # still owns it, so removing an agreeing reaction later does not withdraw it.
    if target == current or (only_own and (found is None or found[1] != source)):
        return RatingState(sample_id, current, await get_votes(session, sample_id=sample_id), False)
    if target is None:
        await session.execute(delete(Rating).where(Rating.sample_id == sample_id, Rating.user_id == user_id))
    else:
        stmt = dialect_insert(session, Rating).values(
            sample_id=sample_id, user_id=user_id, score=target, rated_at=utcnow(), source=source
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[Rating.sample_id, Rating.user_id],
            set_={
                "score": stmt.excluded.score,
                "rated_at": stmt.excluded.rated_at,
                "source": stmt.excluded.source,
            },
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


async def rate_by_reaction(
    session: AsyncSession, *, sample_id: int, user_id: int, score: int | None, added: bool
) -> RatingState:
    """A user's reactions changed (bot/reactions.py's Change): a mapped reaction ``added`` sets
    the rating to ``score`` whatever gave it; a removal changes the rating (to the newest
    mapped reaction left, or none) only when a reaction gave it."""
    return await _set_score(
        session,
        sample_id=sample_id,
        user_id=user_id,
        score=None if score is None else check_score(score),
        toggle=False,
        source=REACTION,
        only_own=not added,
    )


async def set_anonymous_reactions(
    session: AsyncSession, *, sample_id: int, likes: int, dislikes: int, counted_at: datetime
) -> None:
    """Keep Telegram's count of a sample's anonymous reactions, unless a newer count is kept."""
    stmt = dialect_insert(session, AnonymousReactions).values(
        sample_id=sample_id, likes=likes, dislikes=dislikes, counted_at=counted_at
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[AnonymousReactions.sample_id],
        set_={
            "likes": stmt.excluded.likes,
            "dislikes": stmt.excluded.dislikes,
            "counted_at": stmt.excluded.counted_at,
        },
        # Counts arrive grouped and late, and updates are handled concurrently: an older one
        # that lands second must not undo a newer one.
        where=AnonymousReactions.counted_at <= stmt.excluded.counted_at,
    )
    await session.execute(stmt)
