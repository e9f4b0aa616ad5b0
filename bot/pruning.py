"""The periodic pruning of rows nobody will read again: inline offers nothing was chosen from.

Every inline query stores an offer (about 1 kB: three continuations); most are never chosen
(each keystroke is a query). One task per process deletes the old ones every few minutes.
With several replicas each prunes: the DELETE is idempotent, so they need not agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError

from bot.db import repository as repo
from bot.db.database import Database
from bot.db.models import utcnow

log = logging.getLogger(__name__)

# How long an unchosen offer is kept. Telegram clients cache the results for the answer's
# cache_time (10 s, bot/handlers/inline.py) and the bot reuses an offer for CACHE_S (60 s),
# but a user may leave the result list open for a while before picking one: a pick whose
# offer is gone is sent by Telegram all the same, only not stored. An hour is ample.
INLINE_OFFER_TTL = timedelta(hours=1)
PRUNE_EVERY_S = 300.0


class Pruner:
    """One task: every `every_s`, delete the inline offers older than INLINE_OFFER_TTL."""

    def __init__(self, db: Database, *, every_s: float = PRUNE_EVERY_S) -> None:
        self.db = db
        self.every_s = every_s
        self._task: asyncio.Task[None] | None = None

    async def prune(self, *, now: datetime | None = None) -> int:
        """One pass; returns how many offers went."""
        cutoff = (now or utcnow()) - INLINE_OFFER_TTL
        gone = await self.db.run(lambda session: repo.prune_inline_offers(session, older_than=cutoff))
        if gone:
            log.info("pruned %d inline offer(s) older than %s", gone, INLINE_OFFER_TTL)
        return gone

    async def _run(self) -> None:
        while True:
            # Wait first: start-up has enough to do, and a write then could find SQLite busy.
            await asyncio.sleep(self.every_s)
            try:
                await self.prune()
            except (DBAPIError, OSError) as exc:  # an outage: the next pass catches up
                log.warning("pruning inline offers failed (%s); trying again later", exc)
            except Exception:  # a bug here must not end the task
                log.exception("pruning inline offers failed; trying again later")

    def start(self) -> None:
        """Prune every `every_s`, the first time `every_s` from now."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pruner")

    async def stop(self) -> None:
        """Stop pruning (a pass under way is rolled back: it is repeated next time)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
