"""Send claims across replicas: at most one process sends a stored sample at a time.

`claim_new` is called in the transaction that stores the sample (the sender owns it from the
first moment); `take_over` is how the outbox or a redelivered update on any replica gets a
pending sample: only when nobody holds it, or the holder's claim is older than the lease (the
holder died). Both are single statements, so two replicas can never both win.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import SampleClaim, utcnow
from bot.db.repository import _insert, is_pending


async def claim_new(session: AsyncSession, *, sample_id: int, replica: str) -> None:
    """Claim a sample just stored in this transaction."""
    await session.execute(_insert(session, SampleClaim).values(sample_id=sample_id, replica=replica))


async def take_over(
    session: AsyncSession, *, sample_id: int, replica: str, lease: timedelta, now: datetime | None = None
) -> bool:
    """Claim a still-pending sample unless another live claim holds it; True when we may send."""
    if not await is_pending(session, sample_id=sample_id):
        return False
    now = now or utcnow()
    stmt = (
        _insert(session, SampleClaim)
        .values(sample_id=sample_id, replica=replica, claimed_at=now)
        .on_conflict_do_update(
            index_elements=[SampleClaim.sample_id],
            set_={"replica": replica, "claimed_at": now},
            where=or_(SampleClaim.claimed_at < now - lease, SampleClaim.replica == replica),
        )
        .returning(SampleClaim.sample_id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None
