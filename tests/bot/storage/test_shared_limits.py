"""SharedLimits: two replicas (two engines on one database) share the in-flight slot and the
per-minute window; a killed replica's slot expires with its lease.

Runs on SQLite too (the statements are the same); the bot uses it on PostgreSQL only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.db.database import Database
from bot.db.models import utcnow
from bot.shared_limits import SharedLimits


class Clock:
    """A UTC clock the test moves (both replicas read the same one, like NTP-synced hosts)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


async def test_two_replicas_share_the_slot_and_the_window(db: Database, database_url: str) -> None:
    clock = Clock()
    other_db = Database.from_url(database_url)  # a second engine: another replica
    try:
        r1 = SharedLimits(db, 3, replica="r1", lease_s=120, clock=clock)
        r2 = SharedLimits(other_db, 3, replica="r2", lease_s=120, clock=clock)
        assert await r1.begin(1, 100)
        assert await r2.busy(1) and not await r2.begin(1, 101)  # r1's request is running
        assert not await r2.busy(2) and await r2.begin(2, 200)  # other users are not affected
        await r2.end(1)  # r2 holds no slot of user 1: r1's stays
        assert await r2.busy(1)
        await r1.charge(1, 2)
        await r1.end(1)
        assert not await r2.busy(1)
        assert await r2.retry_after(1) == 0 and await r2.retry_after(1, cost=2) == 60  # r1's charge
        assert await r2.begin(1, 101)
        clock.now += timedelta(seconds=20)
        await r2.charge(1)
        await r2.end(1)
        assert await r1.retry_after(1) == 40  # window full: r1's two slots expire 40 s on
        clock.now += timedelta(seconds=41)
        assert await r1.retry_after(1, cost=2) == 0 and await r1.retry_after(1, cost=3) == 19
        await r2.end(2)
        assert not await r1.busy(2)
    finally:
        await other_db.dispose()


async def test_a_dead_replicas_slot_expires_or_is_taken_over_by_its_redelivery(
    db: Database, database_url: str
) -> None:
    clock = Clock()
    other_db = Database.from_url(database_url)
    try:
        dead = SharedLimits(db, 5, replica="r1", lease_s=30, clock=clock)
        alive = SharedLimits(other_db, 5, replica="r2", lease_s=30, clock=clock)
        assert await dead.begin(1, 100) and await dead.begin(2, 200)  # then r1 is killed
        # Update 100 redelivered to r2: it takes over its own slot at once.
        assert not await alive.busy(1, 100) and await alive.begin(1, 100)
        await dead.end(1)  # a late end of the old holder frees nothing of r2's
        assert await alive.busy(1)
        await alive.end(1)
        # User 2's next message is refused until the lease runs out, then admitted.
        assert await alive.busy(2) and not await alive.begin(2, 201)
        clock.now += timedelta(seconds=29)
        assert not await alive.begin(2, 201)
        clock.now += timedelta(seconds=2)
        assert not await alive.busy(2) and await alive.begin(2, 201)
        # An answered update releases the slot its dead first handler still holds.
        assert await dead.begin(3, 300)
        await alive.release(3, 300)
        assert not await alive.busy(3)
    finally:
        await other_db.dispose()
