"""The leaderboard's standings and chart, computed once per change and shared by all who ask.

Each ask reads a cheap version of the votes (their number, last change and the 👍/👎 per
temperature) at most once every `every_s` seconds; only a new version reloads the votes and
refits them, in a thread (the bootstrap and the chart are CPU work). One computation runs at a
time: whoever asks meanwhile waits for it (without holding the event loop) and shares it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.chart import TemperatureVotes
from bot.db.database import Database
from bot.db.outcomes import Vote
from bot.standings import Standings, compute, load_votes, picture, version

REFRESH_EVERY_S = 5.0


@dataclass(frozen=True)
class Shown:
    """The standings and their chart (PNG; None when there is nothing to draw)."""

    standings: Standings
    chart: bytes | None


def render(votes: list[Vote], thumbs: list[TemperatureVotes], title: str) -> Shown:
    """Fit the strengths and draw the chart (CPU work: call it in a thread)."""
    standings = compute(votes, thumbs)
    chart = picture(standings, title) if standings.board or standings.thumbs else None
    return Shown(standings, chart)


class StandingsCache:
    """The latest standings; refreshed when the votes changed, checked at most every `every_s`."""

    def __init__(
        self,
        db: Database,
        title: str,
        *,
        every_s: float = REFRESH_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.title = title
        self.every_s = every_s
        self.computed = 0  # how many times the standings were fitted (tests check the sharing)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._shown: Shown | None = None
        self._version: tuple[object, ...] | None = None
        self._checked = 0.0

    async def get(self) -> Shown:
        """The current standings: cached, or recomputed off the event loop if the votes changed."""
        async with self._lock:  # one computation at a time; later askers share its result
            if self._shown is not None and self._clock() - self._checked < self.every_s:
                return self._shown
            # Read the version before the votes: a vote landing in between makes the cache look
            # older than it is (one extra refit later), never newer.
            current = await self.db.run(version, write=False)
            self._checked = self._clock()
            if self._shown is None or current != self._version:
                votes, thumbs = await self.db.run(load_votes, write=False)
                self._shown = await asyncio.to_thread(render, votes, thumbs, self.title)
                self._version = current
                self.computed += 1
            return self._shown
