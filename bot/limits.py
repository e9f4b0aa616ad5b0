"""Per-user limits: a sliding-window rate limit charged by work done, and at most one
generation in flight."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 60.0


class UserLimits:
    """Tracks each user's recent generations (one slot each) and whether one is running now.

    A request is checked before it runs (`retry_after` with its cost) and charged only after
    its generations were made (`charge`): a refused or failed request costs nothing, /compare
    costs its four generations. Users with nothing in the window and nothing running are not
    kept, so memory follows the active users, not every user ever seen.
    """

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._recent: dict[int, deque[float]] = {}
        self._running: set[int] = set()

    def __len__(self) -> int:
        """How many users are tracked now."""
        return len(self._recent.keys() | self._running)

    def retry_after(self, user_id: int, cost: int = 1) -> int:
        """Seconds until the user may run something costing `cost` slots (0: now); records nothing.

        A cost above the whole budget is treated as the whole budget (it needs an empty window).
        """
        window = self._window(user_id)
        free = self.per_minute - len(window)
        need = min(cost, self.per_minute)
        if free >= need:
            return 0
        # The slot that must expire first for `need` slots to be free.
        oldest_blocking = window[need - free - 1]
        return max(1, math.ceil(oldest_blocking + WINDOW_S - self._clock()))

    def busy(self, user_id: int) -> bool:
        """Whether this user already has a generation running."""
        return user_id in self._running

    def begin(self, user_id: int) -> None:
        """Mark the user as running (charges nothing yet)."""
        self._running.add(user_id)

    def charge(self, user_id: int, slots: int = 1) -> None:
        """Record `slots` generations made for the user now."""
        now = self._clock()
        self._recent.setdefault(user_id, deque()).extend([now] * slots)

    def end(self, user_id: int) -> None:
        """The user's request is over (done, refused or failed)."""
        self._running.discard(user_id)
        self._window(user_id)  # forgets the user if idle

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
