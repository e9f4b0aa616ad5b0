"""telegram_call: which failures are retried, and which never are (a send that may have arrived)."""

from __future__ import annotations

from types import SimpleNamespace

import aiohttp
import pytest
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.calls import certainly_not_sent, telegram_call


def caused(error: TelegramError, cause: BaseException) -> TelegramError:
    error.__cause__ = cause
    return error


# What aiohttp raises (bot/telegram_http.py reports it as PTB's error with this cause).
HOST = SimpleNamespace(host="127.0.0.1", port=9, ssl=True, is_ssl=False)
NOT_SENT = [
    RetryAfter(0),
    NetworkError("Internal Server Error"),  # Telegram answered 500 (no underlying cause)
    caused(
        NetworkError("refused"), aiohttp.ClientConnectorError(HOST, ConnectionRefusedError(111, "refused"))
    ),  # type: ignore[arg-type]
    caused(TimedOut(), aiohttp.ConnectionTimeoutError("pool or connect")),
]
MAYBE_SENT = [
    caused(TimedOut(), aiohttp.SocketTimeoutError("read")),
    caused(NetworkError("disconnected"), aiohttp.ServerDisconnectedError()),
    caused(NetworkError("reset"), aiohttp.ClientOSError(104, "Connection reset by peer")),
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
