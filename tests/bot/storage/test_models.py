"""The schema enforces what the code assumes: uniqueness, ranges, cascades, UTC times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.database import Database
from bot.db.models import NAMING_CONVENTION, Base, Chat, Rating, StoredSample, User
from tests.bot.storage.factories import make_chat, make_sample, make_user, make_world


async def _violates(db: Database, table: Any, **values: Any) -> None:
    """Assert that inserting ``values`` into ``table`` (bypassing validation) is refused."""
    async with db.sessions() as session:
        with pytest.raises(IntegrityError):
            await session.execute(insert(table).values(**values))
            await session.flush()


async def _count(session: AsyncSession, model: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_user_constraints(db: Database) -> None:
    async with db.sessions() as session:
        user = await make_user(session, telegram_id=77)
        await session.commit()
    await _violates(db, User, telegram_id=77)
    for bad in (-0.1, 2.01):
        await _violates(db, User, telegram_id=78, temperature=bad)
    for bad in (0, 4001):
        await _violates(db, User, telegram_id=79, length_char=bad)
        await _violates(db, User, telegram_id=79, length_word=bad)
    # Nothing chosen yet.
    assert (user.temperature, user.length_char, user.length_word, user.model_name) == (None, None, None, None)


async def test_chat_constraints(db: Database) -> None:
    await _violates(db, Chat, telegram_id=1, type="forum")
    await _violates(db, Chat, telegram_id=1, type="group", temperature=3.0)
    async with db.sessions() as session:
        await make_chat(session, telegram_id=5)
        await session.commit()
    await _violates(db, Chat, telegram_id=5, type="group")


async def test_sample_and_rating_constraints(db: Database) -> None:
    async with db.sessions() as session:
        user, chat, sample = await make_world(session)
        await session.commit()
    base = {
        "user_id": user.id,
        "chat_id": chat.id,
        "seed": "s",
        "model_name": "m",
        "model_version": "1",
        "temperature": 0.5,
        "length": 10,
        "text": "t",
        "generation_ms": 1,
    }
    for bad in (
        {"temperature": 2.5},
        {"length": 0},
        {"generation_ms": -1},
        {"up_votes": -1},
        {"user_id": 99999},
    ):
        await _violates(db, StoredSample, **{**base, **bad})
    await _violates(db, Rating, sample_id=sample.id, user_id=user.id, score=0)
    await _violates(db, Rating, sample_id=sample.id, user_id=user.id, score=2)
    async with db.sessions() as session:
        await session.execute(insert(Rating).values(sample_id=sample.id, user_id=user.id, score=1))
        await session.commit()
    # One rating per user per sample, even when the repository is bypassed.
    await _violates(db, Rating, sample_id=sample.id, user_id=user.id, score=-1)


async def test_deletes_cascade(db: Database) -> None:
    async with db.sessions() as session:
        author, chat, sample = await make_world(session)
        rater = await make_user(session)
        other = await make_sample(session, user=rater, chat=chat)
        session.add_all(
            [
                Rating(sample_id=sample.id, user_id=rater.id, score=1),
                Rating(sample_id=other.id, user_id=author.id, score=-1),
            ]
        )
        await session.commit()

        await session.execute(delete(StoredSample).where(StoredSample.id == sample.id))
        assert await _count(session, Rating) == 1  # the rating of the deleted sample went
        await session.execute(delete(User).where(User.id == rater.id))
        # The rater's sample and every rating on it went with them.
        assert await _count(session, StoredSample) == 0
        assert await _count(session, Rating) == 0
        await session.execute(delete(Chat).where(Chat.id == chat.id))
        await session.commit()
        assert await _count(session, User) == 1


async def test_timestamps_are_utc_aware(db: Database) -> None:
    before = datetime.now(UTC)
    async with db.sessions() as session:
        user, _chat, sample = await make_world(session)
        await session.commit()
    async with db.sessions() as session:
        fresh = await session.get(StoredSample, sample.id)
        assert fresh is not None
        assert fresh.created_at.tzinfo is not None and fresh.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        assert before <= fresh.created_at <= datetime.now(UTC)
        loaded = await session.get(User, user.id)
        assert loaded is not None and loaded.updated_at.tzinfo is not None


async def test_naive_datetimes_are_refused(db: Database) -> None:
    async with db.sessions() as session:
        _user, _chat, sample = await make_world(session)
        sample.created_at = datetime(2020, 1, 1)
        with pytest.raises(Exception, match="naive datetime"):
            await session.flush()


def test_constraints_are_named_by_the_convention() -> None:
    assert Base.metadata.naming_convention == NAMING_CONVENTION
    names = {constraint.name for table in Base.metadata.sorted_tables for constraint in table.constraints}
    assert {
        "pk_users",
        "uq_users_telegram_id",
        "ck_users_temperature_range",
        "ck_ratings_score_up_or_down",
        "fk_ratings_sample_id_samples",
        "pk_ratings",
    } <= names
    assert None not in names
