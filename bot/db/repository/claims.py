"""Send claims across replicas: at most one process sends a stored sample at a time.

`claim_new` is called in the transaction that stores the sample (the sender owns it from the
first moment); `attempt` marks the send as started, just before it is made; `release` gives a
sample whose send certainly failed back to the outbox; `done` drops the claims once the
outcome is recorded on the samples. `take_over` is how the outbox or a
redelivered update on any replica gets a pending sample: only when nobody holds it, or the
holder's claim is older than the lease (the holder died) and its send never started. A send
that started and was never recorded may have reached Telegram: the sample is then marked
``send_uncertain`` and not sent again (at most one message beats a duplicate). Each step is a
single statement, so two replicas can never both win.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, bindparam, delete, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import SampleClaim, StoredSample, utcnow
from bot.db.repository.base import dialect_insert, rowcount, table_of
from bot.db.repository.samples import is_pending
from bot.db.trip import Trip

# The steps of every reply's send, built once (see base.per_dialect: per call, ~0.2 ms each).
# (A bound parameter of an INSERT or UPDATE may not be named as a column.)
_CLAIMS = table_of(SampleClaim)
_CLAIM_NEW = insert(_CLAIMS).values(sample_id=bindparam("claimed"), replica=bindparam("holder"))
_ATTEMPT = (
    update(_CLAIMS)
    .where(
        _CLAIMS.c.sample_id.in_(bindparam("ids", expanding=True)), _CLAIMS.c.replica == bindparam("holder")
    )
    .values(attempted_at=bindparam("now"), claimed_at=bindparam("now"))
)
_DONE = delete(_CLAIMS).where(_CLAIMS.c.sample_id.in_(bindparam("ids", expanding=True)))
_RELEASE = _DONE.where(_CLAIMS.c.replica == bindparam("holder"))

# The send's steps are trip units (bot/db/trip.py): `Database.run_trip(partial(claims.attempt,
# ...))` alone, `trip.in_session(session, partial(...))` inside a session's unit of work.


def claim_new(trip: Trip, *, sample_id: int, replica: str) -> None:
    """Claim a sample just stored in this transaction."""
    trip.count(_CLAIM_NEW, {"claimed": sample_id, "holder": replica})


def attempt(trip: Trip, *, sample_ids: list[int], replica: str) -> bool:
    """The send of these samples starts now; False when a claim is no longer ours (it expired
    and another replica took it over): then we must not send."""
    matched = trip.count(_ATTEMPT, {"ids": sample_ids, "holder": replica, "now": utcnow()})
    return matched == len(set(sample_ids))


def release(trip: Trip, *, sample_ids: list[int], replica: str) -> None:
    """The send certainly failed: any replica's outbox may send these samples now."""
    trip.count(_RELEASE, {"ids": sample_ids, "holder": replica})


def done(trip: Trip, *, sample_ids: list[int]) -> None:
    """The send's outcome is recorded on the samples: their claims are no longer needed."""
    trip.count(_DONE, {"ids": sample_ids})


async def take_over(
    session: AsyncSession, *, sample_id: int, replica: str, lease: timedelta, now: datetime | None = None
) -> bool:
    """Claim a still-pending sample unless a live claim holds it; True when we may send it."""
    # Lock the sample row first: a sender recording its send right now (claim dropped, message
    # id set, one transaction) commits before we look, so its sample is no longer pending
    # and its dropped claim is not mistaken for none. (SQLite has one writer: no lock needed.)
    await session.execute(select(StoredSample.id).where(StoredSample.id == sample_id).with_for_update())
    if not await is_pending(session, sample_id=sample_id):
        return False
    now = now or utcnow()
    expired = SampleClaim.claimed_at < now - lease
    died_sending = exists().where(
        SampleClaim.sample_id == sample_id, expired, SampleClaim.attempted_at.is_not(None)
    )
    result = await session.execute(
        update(StoredSample).where(StoredSample.id == sample_id, died_sending).values(send_uncertain=True)
    )
    if rowcount(result):
        return False
    stmt = (
        dialect_insert(session, SampleClaim)
        .values(sample_id=sample_id, replica=replica, claimed_at=now)
        .on_conflict_do_update(
            index_elements=[SampleClaim.sample_id],
            set_={"replica": replica, "claimed_at": now, "attempted_at": None},
            where=and_(expired, SampleClaim.attempted_at.is_(None)),
        )
        .returning(SampleClaim.sample_id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


def _left_behind(replicas: list[str], before: datetime) -> ColumnElement[bool]:
    return and_(SampleClaim.replica.in_(replicas), SampleClaim.claimed_at < before)


async def holders(session: AsyncSession, *, before: datetime) -> list[str]:
    """The replica ids holding claims taken before `before` (a read: the usual start finds
    none and takes no write lock)."""
    stmt = select(SampleClaim.replica).where(SampleClaim.claimed_at < before).distinct()
    return list((await session.scalars(stmt)).all())


async def recover(session: AsyncSession, *, replicas: list[str], before: datetime) -> int:
    """At start-up: claims these replica ids took `before` this process started belong to
    processes known to be dead (this replica's previous run, or a process of this host that no
    longer runs), so nobody must wait for their lease. A send that had started may have reached
    Telegram: its sample is marked ``send_uncertain``; one that had not is given back to the
    outbox. Returns how many."""
    if not replicas:
        return 0
    dead = _left_behind(replicas, before)
    started = select(SampleClaim.sample_id).where(dead, SampleClaim.attempted_at.is_not(None))
    await session.execute(
        update(StoredSample).where(StoredSample.id.in_(started)).values(send_uncertain=True)
    )
    return rowcount(await session.execute(delete(SampleClaim).where(dead)))


__all__ = ["attempt", "claim_new", "done", "holders", "recover", "release", "take_over"]
