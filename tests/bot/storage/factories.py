"""Factories for the storage tests: valid rows with unique ids, overridable per test."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repository as repo
from bot.db.models import Chat, Game, StoredSample, User, utcnow

_ids = itertools.count(1_000_001)


def next_telegram_id() -> int:
    """A Telegram id not used by any other factory call in this process."""
    return next(_ids)


async def make_user(session: AsyncSession, **overrides: Any) -> User:
    """A user (display name "User <id>")."""
    telegram_id = overrides.pop("telegram_id", None) or next_telegram_id()
    fields: dict[str, Any] = {"display_name": f"User {telegram_id}", "language_code": "en"}
    fields.update(overrides)
    return await repo.get_or_create_user(session, telegram_id=telegram_id, **fields)


async def make_chat(session: AsyncSession, **overrides: Any) -> Chat:
    """A group chat by default."""
    telegram_id = overrides.pop("telegram_id", None) or -next_telegram_id()
    fields: dict[str, Any] = {"type": "group", "title": f"Group {telegram_id}"}
    fields.update(overrides)
    return await repo.get_or_create_chat(session, telegram_id=telegram_id, **fields)


async def make_sample(session: AsyncSession, *, user: User, chat: Chat, **overrides: Any) -> StoredSample:
    """A delivered sample from the char model with plausible settings."""
    fields: dict[str, Any] = {
        "seed": "the free spirit ",
        "model_name": "nietzsche-char",
        "model_version": "1",
        "temperature": 0.5,
        "length": 40,
        "text": "is one who thinks otherwise than he is expected to",
        "generation_ms": 12,
        "rng_seed": 42,
        "telegram_message_id": next_telegram_id(),
        "delivered": True,
    }
    fields.update(overrides)
    sample_id = await repo.record_sample(session, user_id=user.id, chat_id=chat.id, **fields)
    sample = await session.get(StoredSample, sample_id)
    assert sample is not None
    return sample


async def make_game(session: AsyncSession, *, chat: Chat, **overrides: Any) -> Game:
    """An open "Real or dream?" game in the chat, an hour from its deadline."""
    fields: dict[str, Any] = {
        "started_by": None,
        "model_name": "nietzsche-char",
        "model_version": "1",
        "temperature": 0.5,
        "seed": "the free spirit ",
        "real_text": "is one who thinks otherwise",
        "fake_text": "is one who laughs at the sea",
        "real_is": "A",
        "lang": "en",
        "deadline": utcnow() + timedelta(hours=1),
    }
    fields.update(overrides)
    return await repo.create_game(session, chat_id=chat.id, **fields)


async def make_world(session: AsyncSession) -> tuple[User, Chat, StoredSample]:
    """One user, one group chat and one sample of theirs in it."""
    user = await make_user(session)
    chat = await make_chat(session)
    sample = await make_sample(session, user=user, chat=chat)
    return user, chat, sample
