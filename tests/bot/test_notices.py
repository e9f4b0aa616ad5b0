from __future__ import annotations

from bot.notices import NoticeThrottle


def test_one_notice_per_user_per_window() -> None:
    now = [100.0]
    throttle = NoticeThrottle(5.0, clock=lambda: now[0])
    assert throttle.allow(1) and not throttle.allow(1) and throttle.allow(2)
    now[0] += 4.9
    assert not throttle.allow(1)
    now[0] += 0.2
    assert throttle.allow(1) and not throttle.allow(1)
