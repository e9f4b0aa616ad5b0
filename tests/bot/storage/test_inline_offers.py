"""Inline offers are pruned: old unchosen ones go; recent ones and chosen ones (a preference) stay."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repository as repo
from bot.db.database import Database
from bot.db.models import InlineOffer, utcnow
from bot.pruning import INLINE_OFFER_TTL, Pruner
from tests.bot.storage.factories import make_user

CANDIDATES = [{"temperature": t, "text": "x" * 300, "rng_seed": 1, "length": 300} for t in (0.3, 0.5, 0.8)]


async def _offer(session: AsyncSession, user_id: int, *, made: datetime, chosen: bool) -> int:
    offer_id = await repo.create_inline_offer(
        session, user_id=user_id, seed="the ", model_name="m", model_version="1", candidates=CANDIDATES
    )
    if chosen:
        offer = await repo.take_inline_offer(session, offer_id=offer_id, user_id=user_id)
        assert offer is not None
        offer.chosen = 1
    await session.flush()
    await session.execute(update(InlineOffer).where(InlineOffer.id == offer_id).values(created_at=made))
    return offer_id


async def _offers(db: Database, now: datetime) -> dict[str, int]:
    """Offers made two hours ago and a minute ago, each chosen from and not."""
    async with db.sessions() as session:
        user = await make_user(session)
        made = {
            "old": await _offer(session, user.id, made=now - timedelta(hours=2), chosen=False),
            "old_chosen": await _offer(session, user.id, made=now - timedelta(hours=2), chosen=True),
            "recent": await _offer(session, user.id, made=now - timedelta(minutes=1), chosen=False),
            "recent_chosen": await _offer(session, user.id, made=now - timedelta(minutes=1), chosen=True),
        }
        await session.commit()
        return made


async def _left(db: Database, made: dict[str, int]) -> set[str]:
    async with db.sessions() as session:
        ids = set((await session.scalars(select(InlineOffer.id))).all())
    return {name for name, offer_id in made.items() if offer_id in ids}


async def test_prune_inline_offers(db: Database) -> None:
    now = utcnow()
    made = await _offers(db, now)
    cutoff = now - timedelta(hours=1)
    assert await db.run(lambda s: repo.prune_inline_offers(s, older_than=cutoff)) == 1
    assert await _left(db, made) == {"old_chosen", "recent", "recent_chosen"}
    assert await db.run(lambda s: repo.prune_inline_offers(s, older_than=cutoff)) == 0
    # A recent offer can still be taken (its pick arrives late) after a pass.
    async with db.sessions() as session:
        recent = await session.get(InlineOffer, made["recent"])
        assert recent is not None
        assert await repo.take_inline_offer(session, offer_id=recent.id, user_id=recent.user_id) is not None


async def test_pruner_keeps_offers_for_their_ttl(db: Database) -> None:
    # Far beyond inline.py's cache_time (10 s) and CACHE_S (60 s).
    assert timedelta(minutes=10) <= INLINE_OFFER_TTL
    now = utcnow()
    made = await _offers(db, now)
    pruner = Pruner(db)
    assert await pruner.prune(now=now) == 1
    assert await _left(db, made) == {"old_chosen", "recent", "recent_chosen"}
    # An hour later, the offer made a minute before `now` has had its time too.
    assert await pruner.prune(now=now + INLINE_OFFER_TTL) == 1
    assert await _left(db, made) == {"old_chosen", "recent_chosen"}


async def test_pruner_task_runs_periodically_and_stops(db: Database) -> None:
    made = await _offers(db, utcnow())
    pruner = Pruner(db, every_s=0.05)
    pruner.start()
    try:
        for _ in range(100):
            if "old" not in await _left(db, made):
                break
            await asyncio.sleep(0.05)
    finally:
        await pruner.stop()
    assert await _left(db, made) == {"old_chosen", "recent", "recent_chosen"}
    await pruner.stop()  # a second stop is harmless
