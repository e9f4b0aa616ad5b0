"""Per-user limits: a sliding-window rate limit charged by work done, and at most one
generation in flight.

Two implementations of one async interface (`Limits`): `UserLimits` keeps them in this
process's memory (SQLite: one process), `SharedLimits` (bot/shared_limits.py) keeps them in
PostgreSQL so that every webhook replica sees the same limits.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

WINDOW_S = 60.0


class Limits(Protocol):
    """What the handlers ask of the limits. ``request`` is the Telegram update id a slot is
    taken for (None: no redelivery to recognise): a redelivered update may take over the slot
    its first delivery holds (that handler may have died with it)."""

    per_minute: int

    async def busy(self, user_id: int, request: int | None = None) -> bool:
        """Whether another request of this user is running."""
        ...

    async def retry_after(self, user_id: int, cost: int = 1) -> int:
        """Seconds until the user may run something costing `cost` slots (0: now)."""
        ...

    async def begin(self, user_id: int, request: int | None = None) -> bool:
        """Mark the user as running, atomically; False (nothing changed) when already busy."""
        ...

    async def charge(self, user_id: int, slots: int = 1) -> None:
        """Record `slots` generations made for the user now."""
        ...

    async def end(self, user_id: int) -> None:
        """The request this process began is over (done, refused or failed)."""
        ...

    async def release(self, user_id: int, request: int) -> None:
        """Free the slot if it is held for `request`: that update was already answered."""
        ...


def wait_s(window: Sequence[float], per_minute: int, cost: int, now: float) -> int:
    """Seconds until `cost` slots are free, given the times (oldest first) of the slots in
    the window. A cost above the whole budget is treated as the whole budget."""
    free = per_minute - len(window)
    need = min(cost, per_minute)
    if free >= need:
        return 0
    # The slot that must expire first for `need` slots to be free.
    oldest_blocking = window[need - free - 1]
    return max(1, math.ceil(oldest_blocking + WINDOW_S - now))


class UserLimits:
    """Tracks each user's recent generations (one slot each) and whether one is running now.

    A request is checked before it runs (`retry_after` with its cost) and charged only after
    its generations were made (`charge`): a refused or failed request costs nothing, /compare
    costs its four generations. Users with nothing in the window and nothing running are not
    kept, so memory follows the active users, not every user ever seen: a user who comes back
    is trimmed then, and once a window every user whose slots all expired is dropped (one-off
    users never come back). Nothing here awaits, so each call is atomic within the process.
    """

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._recent: dict[int, deque[float]] = {}
        self._running: dict[int, int | None] = {}  # user -> the request holding the slot
        self._next_sweep = clock() + WINDOW_S

    def __len__(self) -> int:
        """How many users are tracked now."""
        return len(self._recent.keys() | self._running.keys())

    async def retry_after(self, user_id: int, cost: int = 1) -> int:
        """Seconds until the user may run something costing `cost` slots (0: now); records nothing."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        return wait_s(self._window(user_id), self.per_minute, cost, now)

    async def busy(self, user_id: int, request: int | None = None) -> bool:
        """Whether another request of this user is running."""
        if user_id not in self._running:
            return False
        return request is None or self._running[user_id] != request

    async def begin(self, user_id: int, request: int | None = None) -> bool:
        """Mark the user as running (charges nothing yet); False when already busy."""
        if await self.busy(user_id, request):
            return False
        self._running[user_id] = request
        return True

    async def charge(self, user_id: int, slots: int = 1) -> None:
        """Record `slots` generations made for the user now."""
        now = self._clock()
        self._recent.setdefault(user_id, deque()).extend([now] * slots)

    def _sweep(self, now: float) -> None:
        """Drop every user whose newest slot left the window (O(users), once a window)."""
        cutoff = now - WINDOW_S
        for user_id in [u for u, window in self._recent.items() if window[-1] <= cutoff]:
            del self._recent[user_id]
        self._next_sweep = now + WINDOW_S

    async def end(self, user_id: int) -> None:
        """The user's request is over (done, refused or failed)."""
        self._running.pop(user_id, None)
        self._window(user_id)  # forgets the user if idle

    async def release(self, user_id: int, request: int) -> None:
        """Free the slot if `request` holds it."""
        if user_id in self._running and self._running[user_id] == request:
            await self.end(user_id)

    def _window(self, user_id: int) -> deque[float]:
        """The user's slots still in the window (an empty, untracked deque for idle users)."""
        window = self._recent.get(user_id)
        if window is None:
            return deque()
        cutoff = self._clock() - WINDOW_S
        while window and window[0] <= cutoff:
            window.popleft()
        if not window:
            # Forget idle users so the table does not grow with every user ever seen.
            del self._recent[user_id]
        return window


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0


class AdmissionOrder:
    """A user's requests are admitted one at a time in the order they came (per process).

    Admission awaits (the duplicate check, shared limits): without this, a user's second
    message could be admitted before the first. Users with nobody waiting are not kept.
    """

    def __init__(self) -> None:
        self._turns: dict[int, _Turn] = {}

    def __len__(self) -> int:
        return len(self._turns)

    @asynccontextmanager
    async def turn(self, user_id: int) -> AsyncIterator[None]:
        """Hold the user's admission (asyncio.Lock is first come, first served)."""
        turn = self._turns.setdefault(user_id, _Turn())
        turn.waiting += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.waiting -= 1
            if not turn.waiting:
                del self._turns[user_id]
