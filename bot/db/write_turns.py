"""Whose turn it is to write to SQLite: work already under way goes before new arrivals.

SQLite has one writer at a time, so one process queues its own writers in memory (far faster
than SQLite's busy handler). A plain FIFO queue serves a burst badly: 200 seeds arriving at
once queue 200 "who is this user" writes first, and the first finished sample can be stored
and sent only after all of them (measured: the first reply of a 200-seed burst 5.5 s late).
Here a write that admits new work (`admitting=True`) waits while any other writer waits, so
samples already generated are stored and sent while the newcomers are still being registered.
Within each class the order stays first come, first served. Admitting writes cannot starve:
the other writes exist only for work they admitted earlier.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator


class WriteTurns:
    """An asyncio lock with two queues: ordinary writers, then admitting ones."""

    def __init__(self) -> None:
        self._held = False
        self._waiting: dict[bool, collections.deque[asyncio.Future[None]]] = {
            False: collections.deque(),
            True: collections.deque(),
        }

    @property
    def waiting(self) -> int:
        """How many writers are queued (both kinds)."""
        return sum(len(queue) for queue in self._waiting.values())

    @contextlib.asynccontextmanager
    async def turn(self, *, admitting: bool = False) -> AsyncIterator[None]:
        """Hold the write turn for the body of the `async with`."""
        await self._acquire(admitting)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, admitting: bool) -> None:
        if not self._held and not self.waiting:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiting[admitting]
        queue.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the turn was handed to us just as we were cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):  # a release may have dropped it already
                    queue.remove(waiter)
            raise

    def _release(self) -> None:
        for admitting in (False, True):
            queue = self._waiting[admitting]
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the turn passes on: _held stays True
                    return
        self._held = False
