"""The database of one server process: its engine, its compiled statements, and the drivers
that run units of work where the execution policy says.

SQLAlchemy provides the engine (URL handling, connection pooling, the dialect that compiles
`statements`) and the connections Alembic migrates with; units run on the DBAPI connections
themselves (see `drivers`).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import psycopg
from sqlalchemy import Connection
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from memori_server.errors import InvalidArgument, ServiceError, StorageUnavailable
from memori_server.storage.drivers import (
    FastPathUnavailable,
    PostgresLoop,
    PsycopgTransactions,
    SqliteLoopReads,
    SqliteTransactions,
    Transactions,
    run_blocking,
)
from memori_server.storage.engine import WRITE_OPTION, create_engine
from memori_server.storage.execution import ExecutionPolicy, Path
from memori_server.storage.sqlite_loop_commits import SqliteLoopCommits
from memori_server.storage.sqlite_writer import SqliteWriter
from memori_server.storage.statements import Statements
from memori_server.storage.units import Batch, Fetch, Op, Unit, Work

T = TypeVar("T")
_TRANSIENT = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    OSError,
    sqlite3.OperationalError,  # locked past the busy timeout, disk I/O
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
_REFUSED_VALUES = (DataError, sqlite3.DataError, psycopg.DataError, UnicodeEncodeError)


class _StorageErrors:
    """Transient database failures become StorageUnavailable, values the database refuses
    InvalidArgument; anything else is a bug and passes through. (A class, not a
    `contextmanager` generator: every unit of work runs inside it.)"""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _trace: object
    ) -> None:
        if not isinstance(error, Exception) or isinstance(error, ServiceError):
            return
        if isinstance(error, _TRANSIENT) or (
            isinstance(error, DBAPIError) and error.connection_invalidated
        ):
            raise StorageUnavailable(
                f"database unavailable ({type(error).__name__}); retry later"
            ) from error
        if isinstance(error, _REFUSED_VALUES):
            problem = f"the database cannot store a value of it ({type(error).__name__})"
            raise InvalidArgument([("request", problem)]) from error


_storage_errors = _StorageErrors()


class Database:
    """One engine, its worker threads (as many as pooled connections) and its loop driver."""

    def __init__(
        self,
        database_url: str,
        pool_size: int = 8,
        *,
        fast_paths: bool = True,
        sqlite_synchronous: str = "full",
    ) -> None:
        self.engine = create_engine(database_url, pool_size, sqlite_synchronous)
        self.dialect = self.engine.dialect.name
        self.statements = Statements(self.engine.dialect)
        self._policy = ExecutionPolicy(self.dialect, fast_paths)
        self._executor = ThreadPoolExecutor(pool_size, thread_name_prefix="memori-db")
        self._writer: SqliteWriter | None = None
        self._loop_sqlite: SqliteLoopReads | None = None
        self._loop_commits: SqliteLoopCommits | None = None
        self._loop_postgres: PostgresLoop | None = None
        self._transactions: Transactions
        if self.dialect == "sqlite":
            self._transactions = SqliteTransactions()
            self._loop_sqlite = SqliteLoopReads(self.engine)
            # With synchronous=full a commit waits for the disk: it leaves the loop.
            self._loop_commits = SqliteLoopCommits(self.engine, synced=sqlite_synchronous == "full")
            self._writer = SqliteWriter(self.engine)
        else:
            self._transactions = PsycopgTransactions()
            conninfo = self.engine.url.set(drivername="postgresql").render_as_string(
                hide_password=False
            )
            self._loop_postgres = PostgresLoop(conninfo, pool_size)

    async def run(self, work: Work[T]) -> T:
        """Run a unit of work on the path the execution policy picks."""
        with _storage_errors:
            for path in self._policy.paths(work):
                if path is Path.LOOP:
                    try:
                        return await self._on_loop(work)
                    except FastPathUnavailable:
                        continue
                if path is Path.WRITER:
                    assert self._writer is not None
                    return await self._writer.run(work)
                return await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._on_thread, work
                )
        raise AssertionError("the execution policy always ends with the thread path")

    async def _on_loop(self, work: Work[T]) -> T:
        if self._loop_sqlite is not None:
            if work.writes:
                assert self._loop_commits is not None
                return await self._loop_commits.run(work)
            return self._loop_sqlite.run(work)
        assert self._loop_postgres is not None
        return await self._loop_postgres.run(work)

    def _on_thread(self, work: Work[T]) -> T:
        connection = self.engine.raw_connection()
        try:
            return run_blocking(connection, self._transactions, work)
        except (sqlite3.OperationalError, psycopg.OperationalError, psycopg.InterfaceError):
            connection.invalidate()  # a broken connection is not given to the next unit
            raise
        finally:
            connection.close()

    async def with_connection(self, work: Callable[[Connection], T]) -> T:
        """`work` on a SQLAlchemy connection in one write transaction, in a worker thread:
        for Alembic, which migrates through SQLAlchemy."""

        def in_transaction() -> T:
            with self.engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
                return work(connection)

        with _storage_errors:
            return await asyncio.get_running_loop().run_in_executor(self._executor, in_transaction)

    async def ping(self) -> None:
        await self.run(Work(functools.partial(_ping, self.statements), writes=False))

    async def close(self) -> None:
        if self._loop_commits is not None:
            await self._loop_commits.close()
        if self._loop_sqlite is not None:
            self._loop_sqlite.close()
        if self._loop_postgres is not None:
            await self._loop_postgres.close()
        loop = asyncio.get_running_loop()
        if self._writer is not None:
            await loop.run_in_executor(self._executor, self._writer.close)
        await loop.run_in_executor(self._executor, self.engine.dispose)
        self._executor.shutdown(wait=False)


def _ping(statements: Statements) -> Unit[None]:
    yield Batch((Op(statements.ping, {}, Fetch.ONE),), commit=True)


__all__ = ["Database"]
