"""At most one refusal notice per user every few seconds, so a burst cannot flood a chat."""

from __future__ import annotations

import time
from collections.abc import Callable

NOTICE_EVERY_S = 5.0


class NoticeThrottle:
    """Remembers when each user was last told "no"; forgets them once their window passed
    (swept once a window: memory follows the users of the last two windows)."""

    def __init__(self, every_s: float = NOTICE_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self._clock = clock
        self._last: dict[int, float] = {}
        self._next_sweep = clock() + every_s

    def __len__(self) -> int:
        """How many users are remembered now."""
        return len(self._last)

    def allow(self, user_id: int) -> bool:
        """True (and remembered) when this user may be sent a notice now."""
        now = self._clock()
        if now >= self._next_sweep:  # one-off users never come back: drop the expired
            self._last = {k: t for k, t in self._last.items() if now - t < self.every_s}
            self._next_sweep = now + self.every_s
        last = self._last.get(user_id)
        if last is not None and now - last < self.every_s:
            return False
        self._last[user_id] = now
        return True
