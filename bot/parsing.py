"""Reading user-typed settings: strict, forgiving about formatting, never raising on junk."""

from __future__ import annotations

import re
import unicodedata

from core.acrostic import LINE_LENGTHS, MAX_HEADS, is_ideograph
from core.limits import MAX_TEMPERATURE, MIN_TEMPERATURE, TEMPERATURE_DECIMALS, default_length, length_bounds

# Up to two integer digits and three decimals: "0.7", "0,7", ".5", "1.25"; nothing longer.
_TEMPERATURE = re.compile(
    rf"(\d{{1,2}}(?:[.,]\d{{0,{TEMPERATURE_DECIMALS}}})?|[.,]\d{{1,{TEMPERATURE_DECIMALS}}})"
)
_INTEGER = re.compile(r"\d{1,6}")


def _normalise(text: str) -> str:
    # NFKC turns full-width digits and commas ("０，７") into ASCII; then drop surrounding spaces.
    return unicodedata.normalize("NFKC", text).strip()


def parse_temperature(text: str) -> float | None:
    """A temperature in [0, 2] from text like "0.7" or "0,7"; None when it is not one."""
    cleaned = _normalise(text)
    if cleaned.startswith("-") and cleaned.lstrip("-") and set(cleaned.lstrip("-")) <= {"0", ".", ","}:
        cleaned = cleaned.lstrip("-")  # "-0" is zero, which is allowed
    if not _TEMPERATURE.fullmatch(cleaned):
        return None
    value = float(cleaned.replace(",", "."))
    return value if MIN_TEMPERATURE <= value <= MAX_TEMPERATURE else None


def too_precise(text: str) -> bool:
    """Whether text is a temperature in range but with more decimals than allowed ("0.1234")."""
    cleaned = _normalise(text).replace(",", ".")
    if not re.fullmatch(rf"\d{{0,2}}\.\d{{{TEMPERATURE_DECIMALS + 1},30}}", cleaned):
        return False
    return MIN_TEMPERATURE <= float(cleaned) <= MAX_TEMPERATURE


def parse_length(text: str, level: str) -> int | None:
    """A sample length within the level's bounds; None when it is not one."""
    cleaned = _normalise(text)
    if not _INTEGER.fullmatch(cleaned):
        return None
    value = int(cleaned)
    low, high = length_bounds(level)
    return value if low <= value <= high else None


def effective_length(length: int | None, level: str) -> int:
    """A stored length clamped to what the model's level allows; None: the level's default."""
    if length is None:
        return default_length(level)
    low, high = length_bounds(level)
    return max(low, min(high, length))


def parse_acrostic(text: str) -> tuple[str, int] | None:
    """`/acrostic`'s argument: head characters and an optional line length, 5 (default) or 7,
    before or after them ("新年快乐 7", "７ 新年快乐", "新年快乐"); spaces between heads are
    dropped. None when it is not that (no heads, other characters, too many, another length)."""
    words = _normalise(text).split()
    lengths = [w for w in words if w.isdigit()]
    heads = "".join(w for w in words if not w.isdigit())
    if len(lengths) > 1 or not 1 <= len(heads) <= MAX_HEADS or not all(map(is_ideograph, heads)):
        return None
    line_length = int(lengths[0]) if lengths else LINE_LENGTHS[0]
    return (heads, line_length) if line_length in LINE_LENGTHS else None


def format_temperature(value: float) -> str:
    """0.5 -> "0.5", 1.0 -> "1", 0.25 -> "0.25"."""
    return f"{value:g}"
