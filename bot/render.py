"""Turning samples into Telegram HTML that is escaped and always fits in one message."""

from __future__ import annotations

import html
import re

from bot.parsing import format_temperature
from bot.texts import text

MESSAGE_LIMIT = 4096  # Telegram's limit, counted in UTF-16 code units after entity parsing
SEED_SHOWN = 300  # a long seed is shown by its last part, which is also what the model read
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def utf16_len(value: str) -> int:
    """Length as Telegram counts it."""
    return len(value.encode("utf-16-le")) // 2


def clean(value: str) -> str:
    """Drop control and bidi-override characters that could garble the chat, keep the rest."""
    return _CONTROL.sub("", value)


def shown_seed(seed: str) -> str:
    """The seed as displayed: cleaned, and cut to its last part when long."""
    seed = clean(seed)
    return seed if len(seed) <= SEED_SHOWN else "…" + seed[-SEED_SHOWN:]


def _fit(plain_parts: list[str], budget: int) -> list[str]:
    """Shorten the last (longest-growing) part until all parts fit in `budget` UTF-16 units."""
    total = sum(utf16_len(p) for p in plain_parts)
    if total <= budget:
        return plain_parts
    over = total - budget + 1
    last = plain_parts[-1]
    cut = last[: max(0, len(last) - over)]
    while utf16_len(cut) + total - utf16_len(last) > budget - 1 and cut:
        cut = cut[:-1]
    return [*plain_parts[:-1], cut + "…"]


def sample_html(
    *,
    seed: str,
    continuation: str,
    model: str,
    temperature: float,
    length: int,
    unit: str,
    lang: str,
    notes: list[str] | None = None,
    badge: str | None = None,
) -> str:
    """Seed in bold, then the continuation, then a footer with model and temperature (and the
    novelty badge when the sample copied a long run from its book)."""
    footer = text(
        lang, "footer", model=model, temperature=format_temperature(temperature), length=length, unit=unit
    )
    if badge:
        footer = f"{footer}\n{badge}"
    head = "\n".join(notes or [])
    seed_part, body = _fit(
        [shown_seed(seed), clean(continuation)], MESSAGE_LIMIT - utf16_len(footer + head) - 8
    )
    parts = [html.escape(n, quote=False) for n in notes or []]
    parts.append(f"<b>{html.escape(seed_part, quote=False)}</b>{html.escape(body, quote=False)}")
    parts.append(f"<i>{html.escape(footer, quote=False)}</i>")
    return "\n\n".join(parts)


def excerpt(value: str, limit: int) -> str:
    """A one-line excerpt of at most `limit` characters."""
    flat = " ".join(clean(value).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
