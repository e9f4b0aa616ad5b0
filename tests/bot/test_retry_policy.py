"""telegram_call: which failures are retried, and which never are (a send that may have arrived)."""

from __future__ import annotations

import httpx
import pytest
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.calls import certainly_not_sent, telegram_call


def caused(error: TelegramError, cause: BaseException) -> TelegramError:
    error.__cause__ = cause
    return error


REQUEST = httpx.Request("POST", "http://127.0.0.1/bot/sendMessage")
NOT_SENT = [
    RetryAfter(0),
    NetworkError("Internal Server Error"),  # Telegram answered 500 (no underlying cause)
    caused(NetworkError("httpx.ConnectError"), httpx.ConnectError("refused", request=REQUEST)),
    caused(TimedOut(), httpx.ConnectTimeout("connect", request=REQUEST)),
    caused(TimedOut(), httpx.PoolTimeout("pool", request=REQUEST)),
]
MAYBE_SENT = [
    caused(TimedOut(), httpx.ReadTimeout("read", request=REQUEST)),
    caused(NetworkError("httpx.RemoteProtocolError"), httpx.RemoteProtocolError("disconnected")),
    caused(NetworkError("httpx.ReadError"), httpx.ReadError("reset", request=REQUEST)),
]


class Flaky:
    """Fails with `error` `times` times, then succeeds."""

    def __init__(self, error: TelegramError, times: int) -> None:
        self.error, self.times, self.calls = error, times, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return "sent"


@pytest.mark.parametrize("error", NOT_SENT, ids=repr)
async def test_failures_that_certainly_did_not_send_are_retried(error: TelegramError) -> None:
    assert certainly_not_sent(error)
    call = Flaky(error, 3)
    assert await telegram_call(call, base_delay=0) == "sent" and call.calls == 4
    call = Flaky(error, 4)  # four tries in all, whatever the error
    with pytest.raises(type(error)):
        await telegram_call(call, base_delay=0)
    assert call.calls == 4


@pytest.mark.parametrize("error", MAYBE_SENT, ids=repr)
async def test_a_send_that_may_have_arrived_is_never_retried(error: TelegramError) -> None:
    assert not certainly_not_sent(error)
    call = Flaky(error, 1)
    with pytest.raises(type(error)):
        await telegram_call(call, base_delay=0)
    assert call.calls == 1
    idempotent = Flaky(error, 1)  # an answer or an edit may be repeated safely
    assert await telegram_call(idempotent, idempotent=True, base_delay=0) == "sent"


async def test_refusals_are_not_retried() -> None:
    call = Flaky(BadRequest("message is not modified"), 1)
    with pytest.raises(BadRequest):
        await telegram_call(call, idempotent=True, base_delay=0)
    assert call.calls == 1
