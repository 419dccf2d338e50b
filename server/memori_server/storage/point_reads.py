"""The hot reads (`Get`, a chat call's session and history) without a thread hand-off.

`Database` runs transactions in worker threads; for a single-row read by key that hop, and
SQLAlchemy's per-execution machinery, cost more than the read itself. Here SQLAlchemy still
writes the SQL and converts the values (its public type processors), once per statement,
and the driver runs it directly:
- SQLite (WAL) reads on the event loop through one kept-open autocommit connection, since
  WAL readers never wait for writers;
- PostgreSQL reads through psycopg's own async pool (autocommit); when that pool cannot
  serve at once (busy, or connections lost) the read falls back to the thread path.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import namedtuple
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql import Insert, Select

T = TypeVar("T")
FAST_PATH_WAIT = 0.2  # seconds to wait for a free connection before taking the slow path
Processor = Callable[[Any], Any] | None


class FastPathUnavailable(Exception):
    """The fast path cannot answer now; the caller takes the thread path, which either
    answers or reports the outage at once."""


class CompiledStatement:
    """A statement compiled for one dialect, with the bind and result conversions of its types
    (result conversions for a SELECT; other statements have no result columns here)."""

    def __init__(self, statement: Select[Any] | Insert, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self._positional = compiled.positional
        names: Sequence[str] = compiled.positiontup or list(compiled.binds)
        self._binds = [(name, compiled.binds[name].type.bind_processor(dialect)) for name in names]
        # Values the statement carries itself (a LIMIT, say), used unless the call gives one.
        self._own_values = {name: compiled.binds[name].value for name in names}
        columns = list(statement.selected_columns) if isinstance(statement, Select) else []
        self._results: list[Processor] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        self._active = [(i, process) for i, process in enumerate(self._results) if process]
        self._row = namedtuple("Row", [column.key for column in columns])  # type: ignore[misc]

    def parameters(self, values: dict[str, Any]) -> Any:
        given = {**self._own_values, **values}
        converted = [
            (name, process(given[name]) if process else given[name])
            for name, process in self._binds
        ]
        return [value for _, value in converted] if self._positional else dict(converted)

    def row(self, raw: Sequence[Any] | None) -> Any:
        if raw is None:
            return None
        values = list(raw)
        for index, process in self._active:
            values[index] = process(values[index])
        return self._row(*values)


class PointReader(Protocol):
    async def fetch_one(self, statement: Select[Any], parameters: dict[str, Any]) -> Any: ...

    async def fetch_all(self, statement: Select[Any], parameters: dict[str, Any]) -> list[Any]: ...

    async def close(self) -> None: ...


class _Compiler:
    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._cache: dict[int, CompiledStatement] = {}

    def __call__(self, statement: Select[Any]) -> CompiledStatement:
        key = id(statement)  # hot-path statements are module-level constants
        if key not in self._cache:
            self._cache[key] = CompiledStatement(statement, self._dialect)
        return self._cache[key]


class SqlitePointReader:
    """Reads inline through one autocommit sqlite3 connection (each SELECT stands alone)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._compiled = _Compiler(engine.dialect)
        self._connection: Any = None  # a pooled DBAPI connection, kept while the server runs

    def _rows(self, statement: Select[Any], parameters: dict[str, Any], one: bool) -> Any:
        read = self._compiled(statement)
        if self._connection is None:
            self._connection = self._engine.raw_connection()  # autocommit: see engine.py
        try:
            cursor = self._connection.cursor()
            try:
                cursor.execute(read.sql, read.parameters(parameters))
                if one:
                    return read.row(cursor.fetchone())
                return [read.row(raw) for raw in cursor.fetchall()]
            finally:
                cursor.close()
        except sqlite3.OperationalError as error:  # replaced by a new connection next time
            self._connection.invalidate()
            self._connection = None
            raise OperationalError(read.sql, parameters, error) from error

    async def fetch_one(self, statement: Select[Any], parameters: dict[str, Any]) -> Any:
        return self._rows(statement, parameters, one=True)

    async def fetch_all(self, statement: Select[Any], parameters: dict[str, Any]) -> list[Any]:
        rows: list[Any] = self._rows(statement, parameters, one=False)
        return rows

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class PostgresPointReader:
    """psycopg's async pool on the event loop."""

    def __init__(self, engine: Engine, pool_size: int) -> None:
        conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=10,
            kwargs={"autocommit": True},
        )
        self._opened = False
        self._compiled = _Compiler(engine.dialect)
        self._checks: set[asyncio.Task[None]] = set()

    async def _rows(self, statement: Select[Any], parameters: dict[str, Any], one: bool) -> Any:
        read = self._compiled(statement)
        try:
            if not self._opened:
                await self._pool.open(wait=False)
                self._opened = True
            async with self._pool.connection(timeout=FAST_PATH_WAIT) as connection:
                cursor = await connection.execute(read.sql.encode(), read.parameters(parameters))
                if one:
                    return read.row(await cursor.fetchone())
                return [read.row(raw) for raw in await cursor.fetchall()]
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout, OSError) as error:
            # Idle connections die with a database restart: drop them in the background.
            self._checks.add(task := asyncio.create_task(self._pool.check()))
            task.add_done_callback(self._checks.discard)
            raise FastPathUnavailable(str(error)) from error

    async def fetch_one(self, statement: Select[Any], parameters: dict[str, Any]) -> Any:
        return await self._rows(statement, parameters, one=True)

    async def fetch_all(self, statement: Select[Any], parameters: dict[str, Any]) -> list[Any]:
        rows: list[Any] = await self._rows(statement, parameters, one=False)
        return rows

    async def run(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """`work` on a pooled autocommit connection; FastPathUnavailable when none is free
        at once (then nothing was sent, and the thread path may do the work instead)."""
        try:
            if not self._opened:
                await self._pool.open(wait=False)
                self._opened = True
            connection = await self._pool.getconn(timeout=FAST_PATH_WAIT)
        except (psycopg.OperationalError, PoolTimeout, OSError) as error:
            raise FastPathUnavailable(str(error)) from error
        try:
            return await work(connection)
        finally:
            await self._pool.putconn(connection)

    async def close(self) -> None:
        if self._opened:
            await self._pool.close()
            self._opened = False
