"""At most one refusal notice per user every few seconds, so a burst cannot flood a chat."""

from __future__ import annotations

import time
from collections.abc import Callable

NOTICE_EVERY_S = 5.0


class NoticeThrottle:
    """Remembers when each user was last told "no"; forgets users after a quiet minute."""

    def __init__(self, every_s: float = NOTICE_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self._clock = clock
        self._last: dict[int, float] = {}

    def allow(self, user_id: int) -> bool:
        """True (and remembered) when this user may be sent a notice now."""
        now = self._clock()
        if len(self._last) > 10_000:  # keep memory bounded: drop entries long past their window
            self._last = {k: t for k, t in self._last.items() if now - t < self.every_s}
        last = self._last.get(user_id)
        if last is not None and now - last < self.every_s:
            return False
        self._last[user_id] = now
        return True
