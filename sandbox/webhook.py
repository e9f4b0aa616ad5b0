"""Webhook delivery as Telegram does it: concurrent posts, retries with back-off, the secret header.

Telegram posts each pending update to the webhook URL with the `X-Telegram-Bot-Api-Secret-Token`
header, keeps at most `max_connections` requests open at once (setWebhook's parameter, 40 by
default), and retries an update whose request timed out or got no 2xx answer, waiting longer
after each failure. An update leaves the queue only when the bot answered it with a 2xx; so a
bot that dies mid-update gets that update again, possibly on another replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

import aiohttp

from sandbox.state import Json, SandboxState

log = logging.getLogger(__name__)
DEFAULT_MAX_CONNECTIONS = 40
FIRST_RETRY_S = 0.25
LAST_RETRY_S = 8.0


@dataclass
class DeliveryLog:
    """What the deliverer did, for tests and benchmarks to check."""

    attempts: int = 0
    delivered: int = 0
    failures: int = 0
    most_in_flight: int = 0
    per_update: dict[int, int] = field(default_factory=dict)  # update_id -> attempts


class WebhookDelivery:
    """Posts the sandbox's pending updates to its webhook until each one is answered with a 2xx."""

    def __init__(self, state: SandboxState, *, timeout_s: float = 10.0) -> None:
        self.state = state
        self.timeout_s = timeout_s
        self.log = DeliveryLog()
        self._in_flight: set[int] = set()
        self._retry_at: dict[int, float] = {}  # update_id -> monotonic time of the next attempt
        self._failures: dict[int, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._posts: set[asyncio.Task[None]] = set()

    def kick(self) -> None:
        """Start delivering if a webhook is set and the loop is not running yet."""
        if self.state.webhook["url"] and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sandbox-webhook")

    async def stop(self) -> None:
        """Cancel the loop and every post in flight."""
        tasks = [t for t in (self._task, *self._posts) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _max_connections(self) -> int:
        value = self.state.webhook.get("max_connections") or DEFAULT_MAX_CONNECTIONS
        return max(1, min(100, int(value)))

    def _due(self, now: float) -> list[Json]:
        """Pending updates not in flight whose back-off has passed, oldest first. An update the
        bot's allowed_updates leave out is dropped: Telegram would not have made it."""
        self.state.updates = [u for u in self.state.updates if self.state.delivers(u)]
        return [
            u
            for u in self.state.updates
            if u["update_id"] not in self._in_flight and self._retry_at.get(u["update_id"], 0.0) <= now
        ]

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while self.state.webhook["url"]:
                version = self.state.version
                room = self._max_connections() - len(self._in_flight)
                for update in self._due(time.monotonic())[: max(0, room)]:
                    self._in_flight.add(update["update_id"])
                    task = asyncio.create_task(self._post(session, update))
                    self._posts.add(task)
                    task.add_done_callback(self._posts.discard)
                self.log.most_in_flight = max(self.log.most_in_flight, len(self._in_flight))
                # Wake on a new update or a finished post, or when the next retry falls due.
                waits = [t - time.monotonic() for t in self._retry_at.values()]
                await self.state.wait_for_change(version, max(0.01, min([1.0, *waits])))

    async def _post(self, session: aiohttp.ClientSession, update: Json) -> None:
        update_id = int(update["update_id"])
        headers = {}
        if self.state.webhook["secret_token"]:
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(self.state.webhook["secret_token"])
        self.log.attempts += 1
        self.log.per_update[update_id] = self.log.per_update.get(update_id, 0) + 1
        try:
            async with session.post(self.state.webhook["url"], json=update, headers=headers) as resp:
                delivered = 200 <= resp.status < 300
        except (aiohttp.ClientError, TimeoutError):
            delivered = False
        finally:
            self._in_flight.discard(update_id)
        if delivered:
            self.log.delivered += 1
            self._retry_at.pop(update_id, None)
            self._failures.pop(update_id, None)
            self.state.updates = [u for u in self.state.updates if u["update_id"] != update_id]
        else:
            self.log.failures += 1
            failures = self._failures[update_id] = self._failures.get(update_id, 0) + 1
            back_off = min(LAST_RETRY_S, FIRST_RETRY_S * 2 ** (failures - 1))
            self._retry_at[update_id] = time.monotonic() + back_off
        self.state.touch()  # wakes the loop: a slot is free, or the queue changed
