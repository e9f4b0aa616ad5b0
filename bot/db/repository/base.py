"""Errors, input checks and SQL helpers shared by the repository modules."""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import Enum
from typing import Any, Final, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    CHAT_TYPES,
    DOWN,
    UP,
)
from core.limits import LENGTH_BOUNDS, MAX_LENGTH, MAX_TEMPERATURE, MIN_LENGTH, MIN_TEMPERATURE

MAX_MODEL_NAME = 128
T = TypeVar("T")


class StorageError(Exception):
    """Base class for errors the repository raises on purpose."""


class NotFound(StorageError, LookupError):
    """The row asked for does not exist (e.g. a sample deleted before its button was pressed)."""


class Unset(Enum):
    """Marks "leave this setting alone" where None means "clear the override"."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET


# Each backend's INSERT construct (the one that offers ON CONFLICT).
_INSERTS: Final = {"postgresql": pg_insert, "sqlite": sqlite_insert}


def dialect_insert(session: AsyncSession, model: type[Any]) -> Any:
    """The dialect's INSERT construct, which offers ON CONFLICT on SQLite and PostgreSQL."""
    return of_dialect(session, _INSERTS)(model)


def per_dialect(build: Callable[[Callable[[Any], Any]], T]) -> dict[str, T]:
    """A statement built once for each backend: `build` gets that backend's INSERT construct.

    The statements every reply runs are built once, with bound parameters: building one per
    call (coercing its arguments, generating its cache key) cost the event loop ~0.2 ms each."""
    return {name: build(insert) for name, insert in _INSERTS.items()}


def table_of(model: type[Any]) -> Table:
    """A mapped class's table. The reply path's INSERT, UPDATE and DELETE statements name the
    table, not the class: they touch rows no session has loaded, and the ORM's bulk machinery
    around a class's statement cost about as much as the statement itself."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def of_dialect(session: AsyncSession, statements: dict[str, T]) -> T:
    """The session's backend's statement from `per_dialect`."""
    name = session.get_bind().dialect.name
    if name not in statements:
        raise StorageError(f"unsupported database backend {name!r}")  # pragma: no cover
    return statements[name]


def check_temperature_setting(value: float) -> float:
    """Validate a temperature a user may choose (and the schema stores); returns it as a float."""
    value = float(value)
    if not math.isfinite(value) or not MIN_TEMPERATURE <= value <= MAX_TEMPERATURE:
        raise ValueError(
            f"temperature must be between {MIN_TEMPERATURE:g} and {MAX_TEMPERATURE:g}, got {value:g}"
        )
    return value


def check_length(value: int) -> int:
    """Validate a sample length (tokens) against the stored range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"length must be a whole number, got {value!r}")
    if not MIN_LENGTH <= value <= MAX_LENGTH:
        raise ValueError(f"length must be between {MIN_LENGTH} and {MAX_LENGTH}, got {value}")
    return value


def check_level(level: str) -> str:
    """Validate a model level ("char" or "word"): the unit a stored length counts."""
    if level not in LENGTH_BOUNDS:
        raise ValueError(f"model level must be one of {', '.join(LENGTH_BOUNDS)}, got {level!r}")
    return level


def check_level_length(value: int, level: str) -> int:
    """Validate a length a user or group chooses for a model level (the level's bounds)."""
    low, high = LENGTH_BOUNDS[check_level(level)]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{level} length must be a whole number from {low} to {high}, got {value!r}")
    return value


def check_model_name(value: str) -> str:
    """Validate a model bundle name."""
    value = value.strip()
    if not value or len(value) > MAX_MODEL_NAME:
        raise ValueError(f"model name must be 1 to {MAX_MODEL_NAME} characters")
    return value


def check_score(value: int) -> int:
    """Validate a rating score (+1 or -1)."""
    if value not in (UP, DOWN) or isinstance(value, bool):
        raise ValueError(f"score must be {UP} or {DOWN}, got {value!r}")
    return value


def check_chat_type(value: str) -> str:
    if value not in CHAT_TYPES:
        raise ValueError(f"chat type must be one of {', '.join(CHAT_TYPES)}, got {value!r}")
    return value


def rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
