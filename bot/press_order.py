"""One user's button presses are handled one at a time, in the order they arrived.

Updates are handled concurrently (a long generation never delays another user), so two quick
presses by one user, 👍 then 👎, could reach the database in either order and leave the 👍
standing. Here each press waits until the same user's earlier presses were answered; a press
is answered once its change is stored (bot/handlers/presses.py), and a press that starts a
generation is answered when admission decided, so no press waits for another's generation.
Other users' presses, messages and every other update run as before.

The order is the order updates reach this process: the poller's (Telegram's own order), or
a webhook's posts as they arrive. Replicas keep their own order: one user's presses reaching
two replicas at the same moment are not ordered against each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

# The turn of the press this task is handling (None: not a press, or its turn has ended).
_current_turn: ContextVar[Turn | None] = ContextVar("press_turn", default=None)


class Turn:
    """One press's hold on its user's line; `end` lets the user's next press go."""

    def __init__(self, line: PressLines, user_id: int, lock: asyncio.Lock) -> None:
        self._line, self._user_id, self._lock = line, user_id, lock
        self.over = False

    def end(self) -> None:
        """Let the next press go (once; later calls do nothing)."""
        if not self.over:
            self.over = True
            self._lock.release()
            self._line.leave(self._user_id)


class PressLines:
    """A first-come, first-served line per user; a user's entry lives only while a press of
    theirs is waiting or being handled, so memory follows the presses in flight."""

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._in_line: dict[int, int] = {}

    def __len__(self) -> int:
        """How many users have a press waiting or being handled."""
        return len(self._locks)

    async def take(self, user_id: int) -> Turn:
        """Wait until this user's earlier presses ended their turns (asyncio.Lock wakes its
        waiters in the order they came)."""
        lock = self._locks.setdefault(user_id, asyncio.Lock())
        self._in_line[user_id] = self._in_line.get(user_id, 0) + 1
        try:
            await lock.acquire()
        except BaseException:
            self.leave(user_id)
            raise
        return Turn(self, user_id, lock)

    def leave(self, user_id: int) -> None:
        """A press left the line (its turn ended, or it was cancelled while waiting)."""
        left = self._in_line[user_id] - 1
        if left:
            self._in_line[user_id] = left
        else:
            del self._in_line[user_id], self._locks[user_id]


def presser_of(update: object) -> int | None:
    """The Telegram id of the user who pressed a button, when the update is a press."""
    if isinstance(update, Update) and update.callback_query is not None:
        return update.callback_query.from_user.id
    return None


def end_turn() -> None:
    """The press this task handles is answered: the same user's next press may go."""
    turn = _current_turn.get()
    if turn is not None:
        turn.end()


class PressesInOrder(BaseUpdateProcessor):
    """PTB's concurrent update processing, with each user's presses in line (see the module)."""

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self.lines = PressLines()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Handle the update; a press first waits for its turn. PTB starts updates' tasks in
        the order they arrived and nothing here awaits before `take`, so the line keeps it."""
        presser = presser_of(update)
        if presser is None:
            await coroutine
            return
        try:
            turn = await self.lines.take(presser)
        except BaseException:
            if asyncio.iscoroutine(coroutine):
                coroutine.close()  # never started: no "never awaited" warning
            raise
        token = _current_turn.set(turn)
        try:
            await coroutine
        finally:
            _current_turn.reset(token)
            turn.end()

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to free: the lines empty as their presses finish."""
