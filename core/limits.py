"""Every limit on a generation request, in one place: the parser, the schema and the generator use these.

Lengths count tokens: characters for char models, words for word models.
"""

from __future__ import annotations

from typing import Final

MIN_TEMPERATURE: Final = 0.0
MAX_TEMPERATURE: Final = 2.0
TEMPERATURE_DECIMALS: Final = 3  # "0.125" is accepted, "0.1234" is not
DEFAULT_TEMPERATURE: Final = 0.5
TEMPERATURE_PRESETS: Final = (0.2, 0.5, 1.0, 1.2)  # the /temp buttons and /compare's four parts

# What a user may choose, per model level.
LENGTH_BOUNDS: Final = {"char": (20, 2000), "word": (5, 400)}
# A new user's length per model level: about a paragraph either way.
DEFAULT_LENGTH: Final = {"char": 400, "word": 100}
# Texts shown several to one message (/compare's four parts, a duel's two arms) and inline
# results (a preview each) are at most this long, per model level: a longer /length is cut.
COMPARE_LENGTH: Final = {"char": 200, "word": 50}
INLINE_LENGTH: Final = {"char": 300, "word": 80}
# The absolute range of one request (and of a stored sample): above every level's bound, and
# small enough that no single request can tie up the generator.
MIN_LENGTH: Final = 1
MAX_LENGTH: Final = 4000


def length_bounds(level: str) -> tuple[int, int]:
    """The (low, high) length a user may choose for a model level; unknown levels count as char."""
    return LENGTH_BOUNDS.get(level, LENGTH_BOUNDS["char"])


def capped_length(length: int, level: str, caps: dict[str, int]) -> int:
    """A user's length for a text shown under one of the caps above (COMPARE_LENGTH, INLINE_LENGTH)."""
    return min(length, caps.get(level, caps["char"]))


def default_length(level: str) -> int:
    """The length used until a user chooses one."""
    return DEFAULT_LENGTH.get(level, DEFAULT_LENGTH["char"])


assert all(MIN_LENGTH <= low <= high <= MAX_LENGTH for low, high in LENGTH_BOUNDS.values())
