"""Per-user limits: a sliding-window rate limit and at most one generation in flight."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class UserLimits:
    """Tracks each user's recent requests and whether one is running now."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._recent: dict[int, deque[float]] = {}
        self._running: set[int] = set()

    def retry_after(self, user_id: int) -> int:
        """Seconds until the user may ask again (0: now); does not record anything."""
        window = self._window(user_id)
        if len(window) < self.per_minute:
            return 0
        return max(1, math.ceil(window[0] + 60 - self._clock()))

    def busy(self, user_id: int) -> bool:
        """Whether this user already has a generation running."""
        return user_id in self._running

    def begin(self, user_id: int) -> None:
        """Record a request and mark the user as running."""
        self._window(user_id).append(self._clock())
        self._running.add(user_id)

    def end(self, user_id: int) -> None:
        """The user's generation is over (done or failed)."""
        self._running.discard(user_id)

    def _window(self, user_id: int) -> deque[float]:
        window = self._recent.setdefault(user_id, deque())
        cutoff = self._clock() - 60
        while window and window[0] <= cutoff:
            window.popleft()
        if not window and user_id not in self._running:
            # Forget idle users so the table does not grow with every user ever seen.
            self._recent.pop(user_id, None)
            window = self._recent.setdefault(user_id, deque())
        return window
