"""Per-user limits kept in PostgreSQL, shared by every webhook replica.

The in-flight slot is a `request_slots` row taken by one INSERT .. ON CONFLICT DO UPDATE that
succeeds only when the user has no row, its lease ran out (the replica holding it was killed)
or it is held for the same Telegram update (a redelivery takes over its first delivery's
slot). The per-minute window is the user's `limit_charges` rows of the last minute. Each
call is one short transaction; the times are this process's UTC clock (replicas' clocks are
assumed NTP-synchronised: a second off only shifts a wait by a second).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.database import Database
from bot.db.models import LimitCharge, RequestSlot, utcnow
from bot.db.repository.base import dialect_insert
from bot.user_limits import WINDOW_S, wait_s

WINDOW = timedelta(seconds=WINDOW_S)
# Every N-th charge of this process also deletes every user's charges older than the window,
# so users who never come back leave nothing behind (no scheduler needed).
_PRUNE_EVERY = 200


class SharedLimits:
    """`bot.user_limits.Limits` in the database: the same answers as `UserLimits`, for all replicas."""

    def __init__(
        self,
        db: Database,
        per_minute: int,
        *,
        replica: str,
        lease_s: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.per_minute = per_minute
        self._db = db
        self._replica = replica
        self._lease = timedelta(seconds=lease_s)
        self._clock = clock
        # user -> the holder token of the slot this process took (end() frees only that one).
        self._held: dict[int, str] = {}
        self._charges = 0

    async def busy(self, user_id: int, request: int | None = None) -> bool:
        """Whether another request of this user holds a live slot."""
        now = self._clock()

        async def work(session: AsyncSession) -> RequestSlot | None:
            return await session.get(RequestSlot, user_id)

        slot = await self._db.run(work, write=False)
        if slot is None or slot.expires_at <= now:
            return False
        return request is None or slot.update_id != request

    async def retry_after(self, user_id: int, cost: int = 1) -> int:
        """Seconds until `cost` slots are free in the user's last minute (0: now)."""
        now = self._clock()

        async def work(session: AsyncSession) -> list[tuple[datetime, int]]:
            rows = await session.execute(
                select(LimitCharge.charged_at, LimitCharge.slots)
                .where(LimitCharge.user_id == user_id, LimitCharge.charged_at > now - WINDOW)
                .order_by(LimitCharge.charged_at)
            )
            return [(at, slots) for at, slots in rows]

        charges = await self._db.run(work, write=False)
        window = [at.timestamp() for at, slots in charges for _ in range(slots)]
        return wait_s(window, self.per_minute, cost, now.timestamp())

    async def begin(self, user_id: int, request: int | None = None) -> bool:
        """Take the user's slot unless another live request holds it (one atomic statement)."""
        now = self._clock()
        token = f"{self._replica}/{secrets.token_hex(4)}"
        free = RequestSlot.expires_at <= now
        if request is not None:
            free = or_(free, RequestSlot.update_id == request)

        async def work(session: AsyncSession) -> bool:
            values = {"holder": token, "update_id": request, "expires_at": now + self._lease}
            stmt = (
                dialect_insert(session, RequestSlot)
                .values(user_id=user_id, **values)
                .on_conflict_do_update(index_elements=[RequestSlot.user_id], set_=values, where=free)
                .returning(RequestSlot.user_id)
            )
            return (await session.execute(stmt)).scalar_one_or_none() is not None

        taken = await self._db.run(work)
        if taken:
            self._held[user_id] = token
        return taken

    async def charge(self, user_id: int, slots: int = 1) -> None:
        """Log `slots` generations now; the user's rows older than the window go."""
        now = self._clock()
        self._charges += 1
        stale = LimitCharge.charged_at <= now - WINDOW
        if self._charges % _PRUNE_EVERY:
            stale = and_(LimitCharge.user_id == user_id, stale)

        async def work(session: AsyncSession) -> None:
            session.add(LimitCharge(user_id=user_id, charged_at=now, slots=slots))
            await session.execute(delete(LimitCharge).where(stale))

        await self._db.run(work)

    async def end(self, user_id: int) -> None:
        """Free the slot this process took for the user (a taken-over one is not ours)."""
        token = self._held.pop(user_id, None)
        if token is not None:
            await self._delete(and_(RequestSlot.user_id == user_id, RequestSlot.holder == token))

    async def release(self, user_id: int, request: int) -> None:
        """Free the slot if it is held for `request` (answered already; its holder may be dead)."""
        await self._delete(and_(RequestSlot.user_id == user_id, RequestSlot.update_id == request))

    async def _delete(self, where: object) -> None:
        async def work(session: AsyncSession) -> None:
            await session.execute(delete(RequestSlot).where(where))  # type: ignore[arg-type]

        await self._db.run(work)
