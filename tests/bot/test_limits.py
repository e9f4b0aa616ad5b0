"""UserLimits: the window, charging by work done, and forgetting idle users."""

from __future__ import annotations

from bot.limits import UserLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_idle_users_are_forgotten() -> None:
    clock = Clock()
    limits = UserLimits(3, clock=clock)
    for user in range(100):
        limits.begin(user)
        limits.charge(user)
        limits.end(user)
    assert len(limits) == 100
    clock.now += 61
    for user in range(100):
        assert limits.retry_after(user) == 0  # a check of an idle user also forgets them
    assert len(limits) == 0
    for user in range(100, 200):  # seen, refused or checked, never charged: never kept
        limits.begin(user)
        limits.end(user)
    assert len(limits) == 0


def test_slots_are_charged_by_work_done() -> None:
    clock = Clock()
    limits = UserLimits(5, clock=clock)
    limits.begin(1)
    assert limits.busy(1) and limits.retry_after(1) == 0
    limits.end(1)  # refused or failed: nothing charged
    assert not limits.busy(1) and limits.retry_after(1, cost=5) == 0
    limits.charge(1, 4)  # a /compare
    assert limits.retry_after(1) == 0 and limits.retry_after(1, cost=4) == 60
    clock.now += 10
    limits.charge(1)
    assert limits.retry_after(1) == 50  # the window is full until the /compare's slots expire
    clock.now += 50
    assert limits.retry_after(1, cost=4) == 0 and limits.retry_after(1, cost=5) == 10
    assert limits.retry_after(1, cost=50) == 10  # more than the budget: needs an empty window
