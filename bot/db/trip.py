"""Units of work that reach the database in one trip: the writes every reply makes.

A reply stores its sample, marks the send and records the delivery: three small write
transactions. Through an `AsyncSession` each cost ~1.3 ms of the event loop's CPU on a slow
day (session and pool lifecycle, a greenlet switch and a statement's machinery per statement,
a thread trip per statement), against ~0.1 ms for the same statements run by sqlite3 in one
trip to the connection's thread (docs/deploy.md, "A small machine").

A *trip unit* is a plain function of a `Trip`: it runs prebuilt SQLAlchemy Core statements
(`trip.rows`, `trip.count`), with whatever logic it needs between them, and returns a value.
The same function runs three ways:

- `Database.run_trip` on SQLite: the whole unit on the connection's own thread, between BEGIN
  IMMEDIATE and COMMIT (a read, `write=False`: each statement on its own, no BEGIN), each
  statement compiled once by SQLAlchemy for SQLite (`SqliteStatements`: its SQL, its
  parameters' order, their bind processors and its result columns' processors, so values are
  stored and read exactly as SQLAlchemy stores and reads them) and then run by sqlite3 itself;
- `Database.run_trip` on PostgreSQL: in one transaction through SQLAlchemy's sync facade
  (`AsyncConnection.run_sync`), which does the same work per statement as a session would;
- `in_session`: inside a session's unit of work (a handler storing a sample together with
  its other rows), on the session's connection.

A unit must not touch anything but its trip: on SQLite it runs on another thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, CursorResult, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ReturnsRows

T = TypeVar("T")
Params = Mapping[str, Any]
# Statements compiled and kept; the reply path has ~15, all module-level constants. A unit that
# builds its statements per call only recompiles (the cache is emptied when full).
MAX_CACHED = 256
Processor = Callable[[Any], Any] | None


class Trip(Protocol):
    """What a trip unit may do: run prebuilt Core statements."""

    @property
    def dialect(self) -> str:
        """The backend's name, for statements built per dialect (repository.base.per_dialect)."""
        ...

    def rows(self, statement: ClauseElement, params: Params) -> Sequence[tuple[Any, ...]]:
        """Run `statement` and return all its rows."""
        ...

    def count(self, statement: ClauseElement, params: Params) -> int:
        """Run `statement` (an UPDATE or DELETE) and return how many rows it matched."""
        ...


TripUnit = Callable[[Trip], T]


# -- SQLite: compiled once, run by sqlite3 on the connection's thread -------------------------


@dataclass(frozen=True, slots=True)
class CompiledStatement:
    """A statement as SQLite runs it: its SQL (qmark style), and for each ? in order the
    parameter's name, bind processor and default (a column SQLAlchemy would fill in)."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Processor, ...]
    defaults: Mapping[str, Callable[[], Any]]
    expanding: frozenset[str]  # IN lists: one ? per item, rendered per call
    results: tuple[Processor, ...] | None  # each result column's processor; None: none has one


class SqliteStatements:
    """Every statement a trip ran, compiled once for SQLite (kept for the process's life: the
    reply path's statements are module-level constants)."""

    def __init__(self, dialect: Dialect) -> None:
        if dialect.paramstyle != "qmark":
            raise ValueError(f"expected SQLite's qmark parameters, got {dialect.paramstyle}")
        self._dialect = dialect
        # id(statement) -> (statement, its compiled forms by the parameter names given)
        self._cache: dict[int, tuple[ClauseElement, dict[frozenset[str], CompiledStatement]]] = {}

    def compiled(self, statement: ClauseElement, names: frozenset[str]) -> CompiledStatement:
        """The statement compiled for these parameter names (an INSERT's columns depend on them)."""
        entry = self._cache.get(id(statement))
        if entry is None or entry[0] is not statement:
            if len(self._cache) >= MAX_CACHED:  # statements built per call: memory stays bounded
                self._cache.clear()
            entry = self._cache[id(statement)] = (statement, {})
        found = entry[1].get(names)
        if found is None:
            found = entry[1][names] = self._compile(statement, names)
        return found

    def _compile(self, statement: ClauseElement, names: frozenset[str]) -> CompiledStatement:
        compiled = statement.compile(dialect=self._dialect, column_keys=sorted(names))
        assert isinstance(compiled, SQLCompiler)
        if compiled.update_prefetch:  # Python-side onupdate values (the schema has none)
            raise ValueError(f"a trip cannot run a statement that leaves work to SQLAlchemy: {compiled}")
        order = tuple(compiled.positiontup or ())
        # Values the statement itself holds (`.values(delivered=True)`), then columns' defaults.
        defaults: dict[str, Callable[[], Any]] = {
            name: partial(_same, compiled.binds[name].effective_value)
            for name in order
            if not compiled.binds[name].required
        }
        defaults.update({column.key: _default_of(column, compiled) for column in compiled.insert_prefetch})
        processors = tuple(
            compiled.binds[name].type.dialect_impl(self._dialect).bind_processor(self._dialect)
            for name in order
        )
        expanding = frozenset(name for name in order if compiled.binds[name].expanding)
        columns = statement.exported_columns if isinstance(statement, ReturnsRows) else ()
        results = tuple(
            column.type.dialect_impl(self._dialect).result_processor(self._dialect, None)
            for column in columns
        )
        return CompiledStatement(
            compiled.string, order, processors, defaults, expanding, results if any(results) else None
        )

    def prepare(self, statement: ClauseElement, params: Params) -> tuple[CompiledStatement, str, list[Any]]:
        """The compiled statement, and the SQL and positional values to run it with `params`."""
        compiled = self.compiled(statement, frozenset(params))
        sql, values = compiled.sql, list[Any]()
        for name, process in zip(compiled.names, compiled.processors, strict=True):
            value = params[name] if name in params else compiled.defaults[name]()
            if name in compiled.expanding:
                items = list(value)
                if not items:
                    raise ValueError(f"an empty list for {name!r}")
                sql = sql.replace(f"__[POSTCOMPILE_{name}]", ", ".join("?" * len(items)), 1)
                values.extend(process(item) if process else item for item in items)
            else:
                values.append(process(value) if process else value)
        return compiled, sql, values


def _same(value: T) -> T:
    return value


def _default_of(column: Any, compiled: SQLCompiler) -> Callable[[], Any]:
    """A column's Python-side default as a function of nothing (what SQLAlchemy would compute)."""
    default = column.default
    if default is not None and default.is_scalar:
        return partial(_same, default.arg)
    if default is not None and default.is_callable:
        return partial(default.arg, None)  # SQLAlchemy wraps it to take an execution context
    raise ValueError(f"a trip cannot fill in {column.key!r} of {compiled}: give it a value")


class SqliteTrip:
    """A `Trip` on a sqlite3 connection (on that connection's thread only)."""

    dialect = "sqlite"

    def __init__(self, connection: sqlite3.Connection, statements: SqliteStatements) -> None:
        self._connection = connection
        self._statements = statements

    def rows(self, statement: ClauseElement, params: Params) -> Sequence[tuple[Any, ...]]:
        """Run `statement` and return all its rows (their values as SQLAlchemy returns them)."""
        compiled, sql, values = self._statements.prepare(statement, params)
        rows = self._connection.execute(sql, values).fetchall()
        if compiled.results is None:
            return rows
        return [
            tuple(
                value if process is None else process(value)
                for value, process in zip(row, compiled.results, strict=True)
            )
            for row in rows
        ]

    def count(self, statement: ClauseElement, params: Params) -> int:
        """Run `statement` and return how many rows it matched."""
        _compiled, sql, values = self._statements.prepare(statement, params)
        return self._connection.execute(sql, values).rowcount


def run_here(
    connection: sqlite3.Connection, statements: SqliteStatements, unit: TripUnit[T], *, write: bool
) -> T:
    """Run `unit` in a write transaction (on the connection's thread); roll back if it fails.
    A read (`write=False`) runs each statement on its own, as `Database.run(snapshot=False)`."""
    if not write:
        return unit(SqliteTrip(connection, statements))
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = unit(SqliteTrip(connection, statements))
        connection.commit()
        return result
    finally:
        if connection.in_transaction:
            connection.rollback()


def as_dbapi_error(exc: sqlite3.Error) -> DBAPIError:
    """sqlite3's error as SQLAlchemy raises it (what callers catch and the retry policy reads)."""
    wrapped = DBAPIError.instance(None, None, exc, sqlite3.Error)
    assert isinstance(wrapped, DBAPIError)
    return wrapped


# -- through SQLAlchemy: PostgreSQL, and inside a session ----------------------------------


class ConnectionTrip:
    """A `Trip` on a SQLAlchemy sync connection (SQLAlchemy's own statement machinery)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.dialect = connection.dialect.name

    def rows(self, statement: ClauseElement, params: Params) -> Sequence[tuple[Any, ...]]:
        """Run `statement` and return all its rows."""
        return [tuple(row) for row in self._connection.execute(statement, dict(params))]  # type: ignore[call-overload]

    def count(self, statement: ClauseElement, params: Params) -> int:
        """Run `statement` and return how many rows it matched."""
        result = self._connection.execute(statement, dict(params))  # type: ignore[call-overload]
        assert isinstance(result, CursorResult)
        return int(result.rowcount)


def on_connection(connection: Connection, unit: TripUnit[T]) -> T:
    """Run `unit` on a SQLAlchemy sync connection (in its current transaction)."""
    return unit(ConnectionTrip(connection))


async def in_session(session: AsyncSession, unit: TripUnit[T]) -> T:
    """Run `unit` inside a session's unit of work, on the session's connection."""

    def on_session(sync_session: Session) -> T:
        return on_connection(sync_session.connection(), unit)

    return await session.run_sync(on_session)
