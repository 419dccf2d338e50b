"""The hot path of `Get`: fetch one row by key without a thread hand-off.

`Database` runs transactions in worker threads; for a single-row read by key that hop costs
more than the read. SQLite (WAL) reads on the event loop through one kept-open connection,
since WAL readers never wait for writers. PostgreSQL reads through psycopg's own async pool
(autocommit, server time zone UTC) with the SQL SQLAlchemy compiled once per statement;
when that pool cannot serve at once (busy, or connections lost), the read falls back to
the thread path.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import psycopg
from psycopg.rows import namedtuple_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Select

FAST_PATH_WAIT = 0.2  # seconds to wait for a free connection before taking the slow path


class FastPathUnavailable(Exception):
    """The fast path cannot answer now; the caller takes the thread path, which either
    answers or reports the outage at once."""


class PointReader(Protocol):
    async def fetch_one(self, statement: Select[Any], parameters: dict[str, Any]) -> Any: ...

    async def close(self) -> None: ...


class SqlitePointReader:
    """Reads inline through one autocommit connection (no BEGIN: each SELECT stands alone)."""

    def __init__(self, reader: Engine) -> None:
        self._reader = reader
        self._connection: Connection | None = None

    async def fetch_one(self, statement: Select[Any], parameters: dict[str, Any]) -> Any:
        if self._connection is None:
            self._connection = self._reader.connect()
        try:
            return self._connection.execute(statement, parameters).first()
        except DBAPIError:  # a broken connection is replaced on the next read
            self._connection.close()
            self._connection = None
            raise

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class PostgresPointReader:
    """psycopg's async pool on the event loop; statements compiled by SQLAlchemy once."""

    def __init__(self, engine: Engine, pool_size: int) -> None:
        self._dialect = engine.dialect
        conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=10,
            kwargs={"autocommit": True, "options": "-c timezone=UTC"},
        )
        self._opened = False
        self._sql: dict[int, str] = {}
        self._checks: set[asyncio.Task[None]] = set()

    def _compiled(self, statement: Select[Any]) -> str:
        key = id(statement)  # hot-path statements are module-level constants
        if key not in self._sql:
            self._sql[key] = str(statement.compile(dialect=self._dialect))
        return self._sql[key]

    async def fetch_one(self, statement: Select[Any], parameters: dict[str, Any]) -> Any:
        sql = self._compiled(statement).encode()
        try:
            if not self._opened:
                await self._pool.open(wait=False)
                self._opened = True
            async with self._pool.connection(timeout=FAST_PATH_WAIT) as connection:
                cursor = connection.cursor(row_factory=namedtuple_row)
                await cursor.execute(sql, parameters)
                return await cursor.fetchone()
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout, OSError) as error:
            # Idle connections die with a database restart: drop them in the background.
            self._checks.add(task := asyncio.create_task(self._pool.check()))
            task.add_done_callback(self._checks.discard)
            raise FastPathUnavailable(str(error)) from error

    async def close(self) -> None:
        if self._opened:
            await self._pool.close()
            self._opened = False
