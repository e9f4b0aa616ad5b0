"""At most one refusal notice per user every few seconds, so a burst cannot flood a chat; the
same throttle keeps a double-tapped ⏭ from sending the next sample twice."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

NOTICE_EVERY_S = 5.0


class NoticeThrottle:
    """Remembers when each key (a user told "no", a message whose ⏭ was pressed) last passed;
    forgets it once its window passed (swept once a window: memory follows the keys of the last
    two windows)."""

    def __init__(self, every_s: float = NOTICE_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self._clock = clock
        self._last: dict[Hashable, float] = {}
        self._next_sweep = clock() + every_s

    def __len__(self) -> int:
        """How many keys are remembered now."""
        return len(self._last)

    def allow(self, key: Hashable) -> bool:
        """True (and remembered) when this key may pass now: a user be sent a notice, say."""
        now = self._clock()
        if now >= self._next_sweep:  # one-off users never come back: drop the expired
            self._last = {k: t for k, t in self._last.items() if now - t < self.every_s}
            self._next_sweep = now + self.every_s
        last = self._last.get(key)
        if last is not None and now - last < self.every_s:
            return False
        self._last[key] = now
        return True
