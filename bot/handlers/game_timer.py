"""The game timer: countdowns and reveals of the open games this replica drives.

Each open game is driven by one replica: its name and lease are stored on the game
(`games.timer_replica`, `timer_until`), taken when the game is created, renewed while it runs,
and taken over by another replica only when the lease ran out or its driver is known dead
(`bot/replicas.py`), so a group never gets two countdowns or two reveal attempts.

A tick is one query for this replica's games, however many are open, and none while this
replica drives no game (the drivers are read every RENEW_EVERY_S, and a game this replica
starts wakes it at once: `shown`), so an idle bot reads nothing twice a second. Reveals run as tasks of
their own (a slow send never delays the next deadline); countdown edits share one budget for
the replica (the longest-waiting game first), and each game is edited at most every
COUNTDOWN_EVERY_S: 12 edits a minute per group, under Telegram's ~20, and the replica's
countdowns take at most COUNTDOWN_EDITS_PER_S of its ~30 messages a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError
from telegram import Bot
from telegram.error import TelegramError

from bot.calls import PARSE_MODE, telegram_call
from bot.db.models import utcnow
from bot.db.repository import games
from bot.handlers.game import game_html, reveal_many
from bot.keyboards import game_keyboard
from bot.replicas import is_dead
from bot.services import Services

log = logging.getLogger(__name__)

TICK_S = 0.5
COUNTDOWN_EVERY_S = 5.0  # per game: Telegram allows a group ~20 messages (edits too) a minute
COUNTDOWN_EDITS_PER_S = 5.0  # per replica: the countdowns' share of the bot's ~30 a second
RENEW_EVERY_S = 5.0  # how often the leases are looked at (and renewed once half is gone)
REVEALS_AT_ONCE = 8  # announcements in flight at once (Telegram calls)
OUTAGE_BACKOFF_S = (0.5, 1.0, 2.0, 5.0)


class GameTimer:
    """One task per replica for the games it drives: countdown edits and reveals."""

    def __init__(
        self,
        bot: Bot,
        services: Services,
        *,
        replica: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot = bot
        self.services = services
        self.replica = replica or services.settings.replica_id
        self._clock = clock
        self._edited: dict[int, float] = {}  # open driven game -> clock() of its last countdown edit
        self._busy: set[int] = set()  # games with a reveal or an edit in flight
        self._tasks: set[asyncio.Task[None]] = set()
        self._allowance = COUNTDOWN_EDITS_PER_S  # a token bucket for countdown edits
        self._ticked_at = clock()
        self._drove_at: float | None = None
        self._idle = False  # the last look at the drivers found no open game of ours
        self._task: asyncio.Task[None] | None = None

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Scan now (reveals games that ran out while the bot was down), then every TICK_S."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="game-timer")

    async def stop(self, *, grace_s: float = 5.0) -> None:
        """Stop scanning; reveals in flight get `grace_s` to finish. Open games keep their
        deadline (and, once the lease runs out, any replica's timer takes them)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        late = await self.settle(timeout=grace_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def settle(self, *, timeout: float | None = None) -> set[asyncio.Task[None]]:
        """Wait for the reveals and edits in flight; returns those still running at `timeout`."""
        if not self._tasks:
            return set()
        _, late = await asyncio.wait(set(self._tasks), timeout=timeout)
        return late

    def forget(self, game_id: int) -> None:
        """A game ended outside the timer (/game stop): nothing more to count down."""
        self._edited.pop(game_id, None)

    def shown(self, game_id: int) -> None:
        """The game's message was just sent: the next countdown edit is COUNTDOWN_EVERY_S away."""
        self._edited[game_id] = self._clock()
        self._idle = False

    @property
    def tracked(self) -> int:
        """How many games this timer remembers (only open ones it drives)."""
        return len(self._edited)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self.tick()
            except (DBAPIError, OSError) as exc:  # an outage: said once, retried with backoff
                if failures == 0:
                    log.warning("game timer: the database is unavailable (%s); retrying", exc)
                failures += 1
                await asyncio.sleep(OUTAGE_BACKOFF_S[min(failures, len(OUTAGE_BACKOFF_S)) - 1])
                continue
            except Exception:  # a bug must not end the timer
                log.exception("game timer tick failed")
            else:
                if failures:
                    log.warning("game timer: the database is back after %d failed tick(s)", failures)
                failures = 0
            await asyncio.sleep(TICK_S)

    # -- one tick --------------------------------------------------------------------------

    async def tick(self) -> None:
        """Reveal this replica's games past their deadline; edit the countdowns that are due."""
        now_s = self._clock()
        if self._drove_at is None or now_s - self._drove_at >= RENEW_EVERY_S:
            self._idle = await self._drive() == 0
            self._drove_at = now_s
        if self._idle and not self._edited and not self._busy:
            return  # no open game is ours: nothing to read until the next look or `shown`
        me = self.replica
        found = await self.services.db.run(
            lambda session: games.driven_games(session, replica=me), write=False
        )
        # Only open games this replica drives are remembered: one ended or taken elsewhere goes.
        open_ids = {item.game.id for item in found}
        for gone in self._edited.keys() - open_ids:
            del self._edited[gone]
        self._allowance = min(
            COUNTDOWN_EDITS_PER_S, self._allowance + (now_s - self._ticked_at) * COUNTDOWN_EDITS_PER_S
        )
        self._ticked_at = now_s
        now, due, ended = utcnow(), [], []
        for item in found:
            game_id = item.game.id
            if game_id in self._busy:
                continue
            if item.game.deadline <= now:
                ended.append(game_id)
                continue
            last = self._edited.setdefault(game_id, now_s)
            if item.game.telegram_message_id is not None and now_s - last >= COUNTDOWN_EVERY_S:
                due.append((last, item))
        if ended:  # all of them in one transaction
            self._spawn(ended, self._reveal(ended))
        for _, item in sorted(due, key=lambda pair: pair[0]):  # the longest-waiting first
            if self._allowance < 1:
                break  # the rest wait for the next tick's share
            self._allowance -= 1
            self._edited[item.game.id] = now_s
            self._spawn([item.game.id], self._countdown(item))

    async def _drive(self) -> int:
        """Take the open games nobody drives (or whose driver died), renew our leases once half
        gone; a read first, so an idle bot takes no write lock. Returns how many open games
        this replica drives (more than 0 when unsure)."""
        me, now = self.replica, utcnow()
        drivers = await self.services.db.run(games.game_drivers, write=False)
        dead = [r for r, _ in drivers if r is not None and r != me and is_dead(r, me=me)]
        if not any(_needs_drive(r, until, me, now) for r, until in drivers) and not dead:
            return int(any(r == me for r, _ in drivers))
        return await self.services.db.run(
            lambda session: games.drive(session, replica=me, now=now, lease=games.TIMER_LEASE, dead=dead)
        )

    def _spawn(self, game_ids: list[int], work: Coroutine[Any, Any, None]) -> None:
        self._busy.update(game_ids)
        task = asyncio.get_running_loop().create_task(self._guarded(game_ids, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, game_ids: list[int], work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except (DBAPIError, OSError) as exc:  # the next tick tries again
            log.warning("game timer: game(s) %s must wait (%s)", game_ids, exc)
        except Exception:
            log.exception("game timer: game(s) %s failed", game_ids)
        finally:
            self._busy.difference_update(game_ids)

    async def _reveal(self, game_ids: list[int]) -> None:
        await reveal_many(self.bot, self.services, game_ids, at_once=REVEALS_AT_ONCE)
        for game_id in game_ids:
            self._edited.pop(game_id, None)

    async def _countdown(self, item: games.DrivenGame) -> None:
        """Edit the time left and the votes into the game message (one try: a later tick retries)."""
        game, message_id = item.game, item.game.telegram_message_id
        assert message_id is not None
        with contextlib.suppress(TelegramError):
            await telegram_call(
                lambda: self.bot.edit_message_text(
                    game_html(game, item.votes),
                    item.chat_telegram_id,
                    message_id,
                    parse_mode=PARSE_MODE,
                    reply_markup=game_keyboard(game.id, game.lang),
                ),
                idempotent=True,
                attempts=1,
            )


def _needs_drive(driver: str | None, until: datetime | None, me: str, now: datetime) -> bool:
    """Whether a driver's games need `drive`: undriven, lease gone, or ours and half gone."""
    if driver is None or until is None or until < now:
        return True
    return driver == me and until - now < games.TIMER_LEASE / 2
