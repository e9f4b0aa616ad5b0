"""UserLimits: the window, charging by work done, one request at a time, forgetting idle users;
AdmissionOrder: first come, first served."""

from __future__ import annotations

import asyncio

from bot.notices import NoticeThrottle
from bot.user_limits import AdmissionOrder, UserLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_idle_users_are_forgotten() -> None:
    clock = Clock()
    limits = UserLimits(3, clock=clock)
    for user in range(100):
        await limits.begin(user)
        await limits.charge(user)
        await limits.end(user)
    assert len(limits) == 100
    clock.now += 61
    for user in range(100):
        assert await limits.retry_after(user) == 0  # a check of an idle user also forgets them
    assert len(limits) == 0
    for user in range(100, 200):  # seen, refused or checked, never charged: never kept
        await limits.begin(user)
        await limits.end(user)
    assert len(limits) == 0


async def test_slots_are_charged_by_work_done() -> None:
    clock = Clock()
    limits = UserLimits(5, clock=clock)
    await limits.begin(1)
    assert await limits.busy(1) and await limits.retry_after(1) == 0
    await limits.end(1)  # refused or failed: nothing charged
    assert not await limits.busy(1) and await limits.retry_after(1, cost=5) == 0
    await limits.charge(1, 4)  # a /compare
    assert await limits.retry_after(1) == 0 and await limits.retry_after(1, cost=4) == 60
    clock.now += 10
    await limits.charge(1)
    assert await limits.retry_after(1) == 50  # the window is full until the /compare's slots expire
    clock.now += 50
    assert await limits.retry_after(1, cost=4) == 0 and await limits.retry_after(1, cost=5) == 10
    assert await limits.retry_after(1, cost=50) == 10  # more than the budget: needs an empty window


async def test_one_request_at_a_time_and_its_redelivery_takes_its_slot() -> None:
    limits = UserLimits(5, clock=Clock())
    assert await limits.begin(1, 100)
    assert not await limits.begin(1, 101) and not await limits.begin(1)  # another request: busy
    assert await limits.busy(1, 101) and not await limits.busy(1, 100)
    assert await limits.begin(1, 100)  # update 100 redelivered: its first handler may be dead
    await limits.release(1, 101)  # not the holder: nothing changes
    assert await limits.busy(1)
    await limits.release(1, 100)
    assert not await limits.busy(1) and len(limits) == 0


async def test_admission_is_first_come_first_served_and_forgets_users() -> None:
    order = AdmissionOrder()
    admitted: list[int] = []

    async def request(n: int) -> None:
        async with order.turn(7):
            await asyncio.sleep(0.01 * (3 - n))  # the first one is the slowest to check
            admitted.append(n)

    await asyncio.gather(*(request(n) for n in range(3)))
    assert admitted == [0, 1, 2]
    assert len(order) == 0


async def test_two_hundred_thousand_one_off_users_are_forgotten_after_the_window() -> None:
    """Issue 24, item 8: users who never came back were all tracked an hour later (~161 MiB)."""
    clock = Clock()
    limits = UserLimits(3, clock=clock)
    throttle = NoticeThrottle(5.0, clock=clock)
    for user in range(200_000):
        assert await limits.retry_after(user) == 0
        await limits.begin(user)
        await limits.charge(user)
        await limits.end(user)
        throttle.allow(user)
        clock.now += 0.0001  # 20 s for all of them
    assert len(limits) == 200_000
    clock.now += 61
    assert await limits.retry_after(-1) == 0  # anyone's next request
    throttle.allow(-1)
    assert len(limits) == 0 and len(throttle) == 1
