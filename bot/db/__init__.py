"""Storage: SQLAlchemy models, engine set-up, repository functions and the export.

Handlers use ``Database`` (created once in ``post_init``) and the functions in
``bot.db.repository``; one repository call is one line, several share a unit of work::

    await db.run(partial(repo.set_user_temperature, user_id=user_id, temperature=0.7))

    async def work(session):
        user = await repo.get_or_create_user(session, telegram_id=tg_user.id)
        return await repo.toggle_rating(session, sample_id=sid, user_id=user.id, score=1)

    state = await db.run(work)
"""

from bot.db.database import Database
from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import Base, Chat, Rating, StoredSample, User
from bot.db.transaction import is_retryable

__all__ = [
    "Base",
    "Chat",
    "Database",
    "Rating",
    "StoredSample",
    "User",
    "create_engine",
    "create_sessionmaker",
    "is_retryable",
]
