"""Calling the Bot API: the one retry layer, replies that never raise, one way to answer a press."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from telegram import CallbackQuery, InlineKeyboardMarkup, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.telegram_http import never_sent

log = logging.getLogger(__name__)
T = TypeVar("T")
PARSE_MODE = ParseMode.HTML
TOAST_LIMIT = 200  # Telegram refuses a callback answer longer than this


def certainly_not_sent(exc: TelegramError) -> bool:
    """Whether a failed request certainly did not take effect at Telegram.

    True when Telegram answered with an error (429, 4xx, 5xx) or the request never left this
    machine (connection refused, connect or pool time-out). False when it may have arrived:
    a read/write time-out or a connection broken after the request was written.
    """
    if isinstance(exc, NetworkError) and exc.__cause__ is not None:  # TimedOut is one too
        return never_sent(exc)
    return True  # an answer from Telegram (PTB raises these without an underlying cause)


async def telegram_call(
    make: Callable[[], Awaitable[T]], *, idempotent: bool = False, attempts: int = 4, base_delay: float = 0.5
) -> T:
    """Call the Bot API: the bot's one retry layer (AIORateLimiter only paces, max_retries=0).

    Retried, at most `attempts` tries in all: 429 (after the wait Telegram asks for), 5xx and
    requests that never left (connection refused). Never retried: refusals (400/403), which
    would fail again, and, unless the call is `idempotent` (answers, edits), anything that may
    have reached Telegram (time-outs): a second sendMessage could show the sample twice, so
    the caller records it and the outbox decides (docs/reliability.md).
    """
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            return await make()
        except RetryAfter as exc:
            if last:
                raise
            wait = exc.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            log.info("Bot API asked to wait %.1f s; retrying then", seconds)
            await asyncio.sleep(seconds + 0.1)
        except (BadRequest, Forbidden):
            raise
        except NetworkError as exc:
            if last or not (idempotent or certainly_not_sent(exc)):
                raise
            log.info("Bot API call failed (%s); retrying", exc)
            await asyncio.sleep(base_delay * 2**attempt)
    raise AssertionError("unreachable")


async def reply_html(message: Message | None, html_text: str, **kwargs: object) -> Message | None:
    """Reply in HTML (quoted in groups); a failure to send is logged, not raised."""
    if message is None:
        return None
    quote = message.chat.type != "private"
    try:
        return await telegram_call(lambda: message.reply_html(html_text, do_quote=quote, **kwargs))  # type: ignore[arg-type]
    except TelegramError as exc:
        log.warning("could not send a reply: %s", exc)
        return None


async def answer_press(query: CallbackQuery, toast: str = "") -> None:
    """Answer a button press (every press gets exactly this); a late or repeated answer is not
    worth an error. The toast is cut to what Telegram accepts."""
    cut = toast if len(toast) <= TOAST_LIMIT else toast[: TOAST_LIMIT - 1] + "…"
    try:
        await telegram_call(lambda: query.answer(cut), idempotent=True)
    except TelegramError as exc:
        log.debug("could not answer a callback query: %s", exc)


def _unchanged(exc: BadRequest) -> bool:
    return "not modified" in str(exc).lower()


async def edit_markup(message: Message, markup: InlineKeyboardMarkup | None) -> None:
    """Replace a message's buttons (best effort: "not modified" is not a failure)."""
    try:
        await telegram_call(lambda: message.edit_reply_markup(reply_markup=markup), idempotent=True)
    except BadRequest as exc:
        if not _unchanged(exc):
            log.warning("could not update a keyboard: %s", exc)
    except TelegramError as exc:
        log.warning("could not update a keyboard: %s", exc)


async def edit_html(message: Message, body: str, markup: InlineKeyboardMarkup | None) -> None:
    """Replace a message's text and buttons (best effort)."""
    try:
        await telegram_call(
            lambda: message.edit_text(body, parse_mode=PARSE_MODE, reply_markup=markup), idempotent=True
        )
    except BadRequest as exc:
        if not _unchanged(exc):
            log.warning("could not edit a message: %s", exc)
    except TelegramError as exc:
        log.warning("could not edit a message: %s", exc)
