"""The Bot API's HTTP client: python-telegram-bot's `BaseRequest` on aiohttp.

PTB ships one client, httpx; profiled over a burst of replies (py-spy `--gil`, docs/deploy.md)
sending them took ~45% of the bot's event-loop CPU, most of it in httpx/httpcore/anyio. aiohttp
(already here for the webhook server) parses HTTP in C and costs a fraction of that per request.
PTB's documented extension point for this is a `BaseRequest` subclass; the PTB team's own
version lives in ptbcontrib, which is not on PyPI, so this is ours, small and tested
(tests/bot/test_telegram_http.py).

Timeouts map as: `connect_timeout` → aiohttp's `sock_connect`, `pool_timeout` → `connect`
(aiohttp's wait for a pooled connection plus connecting), `read_timeout` → `sock_read` (PTB
lengthens it for getUpdates' long poll). aiohttp has no write timeout: a request body here is
a few KB, written at once. A failure is reported as PTB's `TimedOut` or `NetworkError` with the
aiohttp error as its cause; `never_sent` says which of them certainly never reached Telegram.
"""

from __future__ import annotations

import logging

import aiohttp
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData

log = logging.getLogger(__name__)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def never_sent(exc: TelegramError) -> bool:
    """Whether a network failure certainly happened before the request left this machine: the
    connection was refused, or none could be had in time (pool or connect time-out). A read
    time-out or a connection broken after writing may have delivered it."""
    cause = exc.__cause__
    return isinstance(cause, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError)


class AiohttpRequest(BaseRequest):
    """One aiohttp session (a pool of `connection_pool_size` connections) for Bot API calls."""

    __slots__ = ("_defaults", "_pool_size", "_session")

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._defaults = aiohttp.ClientTimeout(
            total=None, connect=pool_timeout, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._session: aiohttp.ClientSession | None = None  # made on the running loop

    @property
    def read_timeout(self) -> float | None:
        """The default read time-out (seconds)."""
        return self._defaults.sock_read

    async def initialize(self) -> None:
        """Open the session (again, after a shutdown)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._defaults, headers={"User-Agent": self.USER_AGENT}
            )

    async def shutdown(self) -> None:
        """Close the session and its connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: float | object | None = BaseRequest.DEFAULT_NONE,
        write_timeout: float | object | None = BaseRequest.DEFAULT_NONE,
        connect_timeout: float | object | None = BaseRequest.DEFAULT_NONE,
        pool_timeout: float | object | None = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """One HTTP request: (status, body). Parameters go as a form, files as multipart."""
        del write_timeout  # see the module's docstring
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self._chosen(pool_timeout, self._defaults.connect),
            sock_connect=self._chosen(connect_timeout, self._defaults.sock_connect),
            sock_read=self._chosen(read_timeout, self._defaults.sock_read),
        )
        body: aiohttp.FormData | bytes | None = None
        headers = None
        if request_data is not None and request_data.contains_files:
            form = aiohttp.FormData(request_data.json_parameters)
            for name, part in request_data.multipart_data.items():
                filename, content, *mime = part
                form.add_field(name, content, filename=filename, content_type=mime[0] if mime else None)
            body = form
        elif request_data is not None and request_data.json_parameters:
            body, headers = request_data.url_encoded_parameters().encode(), FORM
        try:
            async with session.request(method, url, data=body, headers=headers, timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as exc:  # ConnectionTimeoutError (pool, connect) or a read's
            raise TimedOut(f"aiohttp.{type(exc).__name__}") from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _chosen(given: float | object | None, default: float | None) -> float | None:
        """A time-out PTB passed, or this client's default when it passed none."""
        return default if given is BaseRequest.DEFAULT_NONE else given  # type: ignore[return-value]
