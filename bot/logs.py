"""Logging set-up: structured records, quiet HTTP libraries, and the bot token never written anywhere.

Every record logged while an update is handled carries that update's id and a short hash of
the user's id (never the id itself), so one request can be followed through the log without
the log becoming a list of users. `LOG_FORMAT=json` writes one JSON object per line.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import re
from collections.abc import Iterable
from typing import Any

_TOKEN_SHAPE = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")
# The update being handled in this task (PTB handles each update in a task of its own).
update_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "update_context", default=None
)


def user_hash(user_id: int, salt: str = "") -> str:
    """A stable, short, one-way tag for a user id (salted with the bot's id)."""
    return hashlib.sha256(f"{salt}:{user_id}".encode()).hexdigest()[:12]


class ContextFilter(logging.Filter):
    """Copies the current update's id and user hash onto every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = update_context.get() or {}
        record.update_id = context.get("update_id")
        record.user = context.get("user")
        return True


class TextFormatter(logging.Formatter):
    """Plain lines, with "[update=.. user=..]" when handling an update."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        update_id = getattr(record, "update_id", None)
        if update_id is not None:
            head, _, rest = line.partition("\n")
            tag = f" [update={update_id} user={getattr(record, 'user', None)}]"
            line = head + tag + (f"\n{rest}" if rest else "")
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("update_id", "user"):
            if getattr(record, key, None) is not None:
                entry[key] = getattr(record, key)
        if record.exc_text or record.exc_info:
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(entry, ensure_ascii=False)


class RedactingFilter(logging.Filter):
    """Replaces secrets (and anything shaped like a bot token) in every record with '***'."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def redact(self, value: str) -> str:
        """The text with every secret masked."""
        for secret in self.secrets:
            value = value.replace(secret, "***")
        return _TOKEN_SHAPE.sub("***", value)

    def filter(self, record: logging.LogRecord) -> bool:
        # Render the message once, redact it, and drop the args so nothing re-renders the raw text.
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        record.msg, record.args = self.redact(message), None
        return True


def configure_logging(
    level: str = "INFO", secrets: Iterable[str] = (), *, fmt: str = "text"
) -> RedactingFilter:
    """Root logging to stderr with redaction and update context on every handler; httpx at WARNING."""
    redactor = RedactingFilter(secrets)
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(redactor)
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO, and the URL contains the token.
    for noisy in ("httpx", "httpcore", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return redactor
