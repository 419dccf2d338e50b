"""Runs blocking SQLAlchemy work off the event loop: one thread hand-off per transaction.

Async drivers hop between the loop and the database once per statement, fetch and commit
(aiosqlite runs each in a thread, asyncpg's SQLAlchemy adapter adds round trips); a whole
transaction in one worker thread costs a single hop, which is what keeps a `Get` close to
the cost of the RPC itself.

Single-row reads by key skip the hop altogether (`fetch_one`, see `point_reads`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.sql import Select

from memori_server.errors import InvalidArgument, ServiceError, StorageUnavailable
from memori_server.storage.engine import AUTOCOMMIT_OPTION, WRITE_OPTION, create_engine
from memori_server.storage.inline_writes import SqliteInlineWriter, WriterBusy
from memori_server.storage.point_reads import (
    FastPathUnavailable,
    PointReader,
    PostgresPointReader,
    SqlitePointReader,
)

T = TypeVar("T")
Work = Callable[[Connection], T]


def _is_transient(error: BaseException) -> bool:
    transient = (
        OperationalError,
        InterfaceError,
        PoolTimeoutError,
        OSError,
        psycopg.OperationalError,  # from the psycopg fast paths, outside SQLAlchemy
        psycopg.InterfaceError,
    )
    if isinstance(error, transient):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def _is_data_error(error: BaseException) -> bool:
    """The database refused a value (too long, not storable): the request's fault."""
    return isinstance(error, DataError | psycopg.DataError | UnicodeEncodeError)


@contextmanager
def _storage_errors() -> Iterator[None]:
    """Transient database failures become StorageUnavailable, refused values
    InvalidArgument; anything else passes through."""
    try:
        yield
    except ServiceError:
        raise
    except Exception as error:
        if _is_transient(error):
            raise StorageUnavailable(
                f"database unavailable ({type(error).__name__}); retry later"
            ) from error
        if _is_data_error(error):
            problem = f"the database cannot store a value of it ({type(error).__name__})"
            raise InvalidArgument([("request", problem)]) from error
        raise


class Database:
    """An engine plus the worker threads that use it; as many threads as pooled connections."""

    def __init__(self, database_url: str, pool_size: int = 8) -> None:
        self.engine: Engine = create_engine(database_url, pool_size)
        self.dialect = self.engine.dialect.name
        self._executor = ThreadPoolExecutor(pool_size, thread_name_prefix="memori-db")
        self._writer = self.engine.execution_options(**{WRITE_OPTION: True})
        self._reader = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql"
            else self.engine.execution_options(**{AUTOCOMMIT_OPTION: True})
        )
        self._points: PointReader = (
            PostgresPointReader(self.engine, pool_size)
            if self.dialect == "postgresql"
            else SqlitePointReader(self.engine)
        )
        self._inline = SqliteInlineWriter(self.engine) if self.dialect == "sqlite" else None

    async def _run(self, function: Callable[[], T]) -> T:
        with _storage_errors():
            return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    async def write(self, work: Work[T], *, small: bool = False) -> T:
        """`work` in one transaction that may write; committed unless it raises.

        `small`: a few statements touching a few rows, which on SQLite may then run on the
        event loop when the write lock is free (see `inline_writes`).
        """
        if small and self._inline is not None:
            with _storage_errors():
                try:
                    return self._inline.run(work)
                except WriterBusy:
                    pass
        return await self._run(functools.partial(self._in_transaction, self._writer, work))

    async def read(self, work: Work[T]) -> T:
        """`work` in one read-only transaction: a consistent view over several statements."""
        return await self._run(functools.partial(self._in_transaction, self.engine, work))

    async def _fast_read(self, fast: Awaitable[T], slow: Work[T]) -> T:
        """`fast` (the point reader), or `slow` on the thread path when it cannot answer."""
        with _storage_errors():
            try:
                return await fast
            except FastPathUnavailable:
                pass
        return await self.read_autocommit(slow)

    async def fetch_one(self, statement: Select[Any], parameters: dict[str, Any]) -> Any:
        """The one row `statement` selects by key, or None; without a thread hand-off."""
        return await self._fast_read(
            self._points.fetch_one(statement, parameters),
            lambda connection: connection.execute(statement, parameters).first(),
        )

    async def fetch_all(self, statement: Select[Any], parameters: dict[str, Any]) -> list[Any]:
        """The rows `statement` selects, without a thread hand-off when the fast path can."""
        return await self._fast_read(
            self._points.fetch_all(statement, parameters),
            lambda connection: list(connection.execute(statement, parameters).all()),
        )

    async def on_loop_postgres(
        self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]
    ) -> T:
        """PostgreSQL only: `work` on psycopg's async pool, without a thread hand-off.

        FastPathUnavailable when the database is SQLite or no connection is free at once
        (nothing was sent then); a failure once `work` runs is StorageUnavailable, since a
        commit may or may not have happened.
        """
        if not isinstance(self._points, PostgresPointReader):
            raise FastPathUnavailable("not PostgreSQL")
        with _storage_errors():
            return await self._points.run(work)

    async def read_autocommit(self, work: Work[T]) -> T:
        """`work` whose statements each stand alone: autocommit, no BEGIN/COMMIT round trips."""
        return await self._run(functools.partial(self._autocommit, work))

    @staticmethod
    def _in_transaction(engine: Engine, work: Work[T]) -> T:
        with engine.begin() as connection:
            return work(connection)

    def _autocommit(self, work: Work[T]) -> T:
        with self._reader.connect() as connection:
            return work(connection)

    async def ping(self) -> None:
        await self.read_autocommit(lambda connection: connection.execute(text("SELECT 1")))

    async def close(self) -> None:
        if self._inline is not None:
            self._inline.close()
        await self._points.close()
        await asyncio.get_running_loop().run_in_executor(self._executor, self.engine.dispose)
        self._executor.shutdown(wait=False)
