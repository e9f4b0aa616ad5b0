"""The SQLite write queue: work under way writes before new arrivals, and nobody is stranded."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.database import Database
from bot.db.write_turns import WriteTurns


async def _writer(turns: WriteTurns, name: str, order: list[str], *, admitting: bool = False) -> None:
    async with turns.turn(admitting=admitting):
        order.append(name)
        await asyncio.sleep(0)


async def test_waiting_ordinary_writes_go_before_earlier_admitting_ones() -> None:
    turns, order = WriteTurns(), []
    async with turns.turn():  # held while everyone queues
        tasks = [asyncio.create_task(_writer(turns, "new-1", order, admitting=True))]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(_writer(turns, "new-2", order, admitting=True)))
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(_writer(turns, "store-1", order)))
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(_writer(turns, "store-2", order)))
        await asyncio.sleep(0)
        assert turns.waiting == 4
    await asyncio.gather(*tasks)
    assert order == ["store-1", "store-2", "new-1", "new-2"]
    assert turns.waiting == 0


async def test_one_writer_at_a_time() -> None:
    turns, inside, most = WriteTurns(), 0, 0

    async def writer(admitting: bool) -> None:
        nonlocal inside, most
        async with turns.turn(admitting=admitting):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.001)
            inside -= 1

    await asyncio.gather(*(writer(i % 3 == 0) for i in range(30)))
    assert most == 1


async def test_a_cancelled_waiter_strands_nobody() -> None:
    turns, order = WriteTurns(), []
    async with turns.turn():
        gone = asyncio.create_task(_writer(turns, "gone", order))
        after = asyncio.create_task(_writer(turns, "after", order, admitting=True))
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.sleep(0)
    await asyncio.wait_for(after, 1)
    assert order == ["after"]
    assert gone.cancelled()
    async with asyncio.timeout(1), turns.turn():  # the turn is free again
        pass


async def test_a_waiter_cancelled_as_the_turn_reaches_it_passes_it_on() -> None:
    turns, order = WriteTurns(), []
    async with turns.turn():
        first = asyncio.create_task(_writer(turns, "first", order))
        second = asyncio.create_task(_writer(turns, "second", order))
        await asyncio.sleep(0)
    first.cancel()  # the release above already handed `first` the turn
    await asyncio.wait_for(second, 1)
    assert order == ["second"]
    async with asyncio.timeout(1), turns.turn():
        pass


async def test_database_admitting_writes_wait_behind_the_others(tmp_path: Path) -> None:
    from migrations import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'turns.sqlite3'}"
    await asyncio.to_thread(upgrade, url)
    db = Database.from_url(url)
    assert db.write_turns is not None
    order: list[str] = []

    def work(name: str) -> Callable[[AsyncSession], Awaitable[None]]:
        async def unit(session: AsyncSession) -> None:
            await session.execute(text("SELECT 1"))
            order.append(name)

        return unit

    try:
        async with db.write_turns.turn():
            tasks = [asyncio.create_task(db.run(work("who"), admitting=True))]
            await asyncio.sleep(0.01)
            tasks.append(asyncio.create_task(db.run(work("store"))))
            await asyncio.sleep(0.01)
            tasks.append(asyncio.create_task(db.run(work("read"), write=False)))  # reads never queue
            await asyncio.wait_for(asyncio.shield(tasks[2]), 5)
        await asyncio.gather(*tasks)
    finally:
        await db.dispose()
    assert order == ["read", "store", "who"]
