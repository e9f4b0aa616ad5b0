"""The load for the replica rig, and the exactly-once check after it.

Each user sends seeds one after another, waits for the reply and presses 👍 on it. Afterwards
`check` compares what the users saw (the sandbox) with what was stored (PostgreSQL): one
reply per seed, one sample per seed update, one rating per press, counters equal to the votes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.database import Database
from bot.db.models import Rating
from bot.db.models import StoredSample as Sample
from sandbox.testing import SandboxServer

Json = dict[str, object]
SEEDS = ["the will to truth", "what then?", "supposing that truth is a woman", "morality is", "free spirit"]


@dataclass
class Load:
    """What the users did and how long they waited."""

    seeds: int = 0
    presses: int = 0
    latencies: list[float] = field(default_factory=list)
    done: int = 0  # seeds answered so far (the bench kills a replica half-way)
    unanswered: int = 0  # seeds with no reply within the timeout
    odd: list[str] = field(default_factory=list)  # replies that are no sample (an error, a refusal)


async def one_user(sb: SandboxServer, user: Json, count: int, load: Load, *, timeout: float = 90) -> None:
    """`count` seeds, each answered before the next; every answer rated 👍."""
    chat_id = int(str(user["id"]))
    for i in range(count):
        before = len(sb.bot_messages(chat_id))
        started = time.monotonic()
        sb.send(user, chat_id, f"{SEEDS[i % len(SEEDS)]} {i}")
        load.seeds += 1
        try:
            (reply,) = await sb.wait_for_bot_messages(chat_id, after=before, timeout=timeout)
        except TimeoutError:
            load.unanswered += 1  # check() tells whether that was a send cut off by a kill
            continue
        load.latencies.append(time.monotonic() - started)
        load.done += 1
        if "👍" not in str(reply.get("reply_markup", "")):
            load.odd.append(str(reply.get("text", ""))[:200])
            continue
        query_id = sb.press(user, reply, button="👍")
        load.presses += 1
        await sb.wait_for_answer(query_id, timeout=timeout)


async def run_load(
    sb: SandboxServer, users: list[Json], per_user: int, load: Load, *, timeout: float = 90
) -> None:
    """All users at once."""
    await asyncio.gather(*(one_user(sb, u, per_user, load, timeout=timeout) for u in users))


@dataclass(frozen=True)
class Check:
    """The numbers that must agree after a run."""

    seeds: int
    replies: int  # bot messages in the users' chats
    chats_off: dict[int, int]  # chat id -> replies minus seeds sent there, where not 0
    samples: int
    distinct_updates: int
    undelivered: int
    uncertain: int  # stored samples whose sender died mid-send: never sent again
    unanswered: int
    presses: int
    ratings: int
    up_votes: int

    @property
    def exactly_once(self) -> bool:
        """Every seed answered once, stored once; every press counted once."""
        return (
            self.replies == self.seeds
            and not self.chats_off
            and self.samples == self.distinct_updates == self.seeds
            and self.undelivered == self.uncertain
            and self.ratings == self.up_votes == self.presses
        )

    @property
    def never_twice(self) -> bool:
        """Nothing doubled or lost, except seeds whose reply was cut off by a kill mid-send
        (marked uncertain, so never sent twice: at most once is the documented choice)."""
        return (
            self.replies + self.unanswered == self.seeds
            and self.unanswered <= self.uncertain
            and max([0, *self.chats_off.values()]) <= 0
            and self.samples == self.distinct_updates == self.seeds
            and self.undelivered == self.uncertain
            and self.ratings == self.up_votes == self.presses
        )


async def check(sb: SandboxServer, database_url: str, users: list[Json], per_user: int, load: Load) -> Check:
    """Count what every user saw and what the database holds."""
    counts = {int(str(u["id"])): len(sb.bot_messages(int(str(u["id"])))) for u in users}
    db = Database.from_url(database_url)

    async def work(session: AsyncSession) -> tuple[int, int, int, int, int, int]:
        samples = await session.scalar(select(func.count()).select_from(Sample))
        updates = await session.scalar(select(func.count(func.distinct(Sample.update_id))))
        undelivered = await session.scalar(
            select(func.count()).select_from(Sample).where(Sample.telegram_message_id.is_(None))
        )
        uncertain = await session.scalar(
            select(func.count()).select_from(Sample).where(Sample.send_uncertain.is_(True))
        )
        ratings = await session.scalar(select(func.count()).select_from(Rating))
        up = await session.scalar(select(func.coalesce(func.sum(Sample.up_votes), 0)))
        found = (samples, updates, undelivered, uncertain, ratings, up)
        return tuple(int(n or 0) for n in found)  # type: ignore[return-value]

    try:
        samples, updates, undelivered, uncertain, ratings, up = await db.run(work, write=False)
    finally:
        await db.dispose()
    return Check(
        seeds=load.seeds,
        replies=sum(counts.values()),
        chats_off={chat: n - per_user for chat, n in counts.items() if n != per_user},
        samples=samples,
        distinct_updates=updates,
        undelivered=undelivered,
        uncertain=uncertain,
        unanswered=load.unanswered,
        presses=load.presses,
        ratings=ratings,
        up_votes=up,
    )
