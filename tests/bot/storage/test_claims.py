"""Send claims across replicas (bot/db/repository/claims.py): one sender at a time, a dead one's send
never repeated, a dead one's unstarted send taken over after the lease."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repository as repo
from bot.db.database import Database
from bot.db.models import StoredSample as Sample
from bot.db.models import utcnow
from bot.db.repository import claims
from bot.db.trip import Trip, in_session
from tests.bot.storage.factories import make_chat, make_sample, make_user

LEASE = timedelta(seconds=60)


async def _pending_claimed_by(db: Database, replica: str | None) -> int:
    """A stored, unsent sample; claimed by `replica` as its sender would (None: unclaimed)."""

    async def work(session: AsyncSession) -> int:
        user, chat = await make_user(session), await make_chat(session)
        sample = await make_sample(session, user=user, chat=chat, telegram_message_id=None, delivered=False)
        if replica is not None:
            await in_session(session, partial(claims.claim_new, sample_id=sample.id, replica=replica))
        return sample.id

    return int(await db.run(work))


async def _take_over(db: Database, sample_id: int, replica: str, *, later: timedelta = timedelta(0)) -> bool:
    async def work(session: AsyncSession) -> bool:
        now = utcnow() + later
        return await claims.take_over(session, sample_id=sample_id, replica=replica, lease=LEASE, now=now)

    return bool(await db.run(work))


async def test_an_unclaimed_pending_sample_goes_to_exactly_one_of_many_replicas(db: Database) -> None:
    sample_id = await _pending_claimed_by(db, None)
    wins = await asyncio.gather(*(_take_over(db, sample_id, f"r{i}") for i in range(6)))
    assert sum(wins) == 1


async def test_a_live_claim_is_not_taken_over_an_expired_unstarted_one_is(db: Database) -> None:
    sample_id = await _pending_claimed_by(db, "r1")
    assert not await _take_over(db, sample_id, "r2")  # r1 is sending it right now
    # r1 died before its send started: after the lease, r2 sends it (once).
    assert await _take_over(db, sample_id, "r2", later=LEASE * 2)
    assert not await _take_over(db, sample_id, "r3", later=LEASE)


async def test_a_sender_that_died_mid_send_leaves_the_sample_uncertain_never_resent(db: Database) -> None:
    sample_id = await _pending_claimed_by(db, "r1")

    assert await db.run_trip(partial(claims.attempt, sample_ids=[sample_id], replica="r1"))
    assert not await _take_over(db, sample_id, "r2", later=LEASE * 2)

    async def stored(session: AsyncSession) -> Sample | None:
        return await repo.get_sample(session, sample_id=sample_id)

    sample = await db.run(stored, write=False)
    assert sample is not None and sample.send_uncertain
    assert not await _take_over(db, sample_id, "r3", later=LEASE * 3)


async def test_a_released_or_recorded_sample_is_free_again_or_no_longer_pending(db: Database) -> None:
    released = await _pending_claimed_by(db, "r1")

    await db.run_trip(partial(claims.release, sample_ids=[released], replica="r1"))
    assert await _take_over(db, released, "r2")  # the send certainly failed: anyone may retry now

    recorded = await _pending_claimed_by(db, "r1")

    def record(trip: Trip) -> None:
        claims.done(trip, sample_ids=[recorded])
        assert repo.mark_delivered(trip, sample_id=recorded, message_id=77)

    await db.run_trip(record)
    assert not await _take_over(db, recorded, "r2", later=LEASE * 2)  # sent: nothing to take over


async def test_a_sender_whose_claim_was_taken_over_may_not_start_its_send(db: Database) -> None:
    sample_id = await _pending_claimed_by(db, "r1")
    assert await _take_over(db, sample_id, "r2", later=LEASE * 2)  # r1 was too slow to start

    assert not await db.run_trip(partial(claims.attempt, sample_ids=[sample_id], replica="r1"))
    assert await db.run_trip(partial(claims.attempt, sample_ids=[sample_id], replica="r2"))


async def test_a_restarted_replica_settles_its_previous_runs_claims_at_once(db: Database) -> None:
    """Issue 24, item 10: a replica killed mid-send left claims that only expired after the
    lease (123 s); restarted with the same REPLICA_ID, it settles them when it starts."""
    started = await _pending_claimed_by(db, "r1")  # the send had begun when r1 was killed
    unstarted = await _pending_claimed_by(db, "r1")  # stored, not yet sent
    others = await _pending_claimed_by(db, "r2")  # another replica's live claim: untouched

    assert await db.run_trip(partial(claims.attempt, sample_ids=[started], replica="r1"))
    restart = utcnow() + timedelta(seconds=1)

    async def recover(session: AsyncSession) -> int:
        return await claims.recover(session, replicas=["r1"], before=restart)

    assert await db.run(recover) == 2

    async def stored(session: AsyncSession) -> list[bool]:
        return [(await repo.get_sample(session, sample_id=i)).send_uncertain for i in (started, unstarted)]  # type: ignore[union-attr]

    assert await db.run(stored, write=False) == [True, False]  # never resent; free to send
    assert await _take_over(db, unstarted, "r1")  # no waiting for the lease
    assert not await _take_over(db, started, "r1") and not await _take_over(db, others, "r1")
