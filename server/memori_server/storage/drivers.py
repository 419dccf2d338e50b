"""Drivers: run a unit's batches on a database connection.

- `run_blocking`: a DBAPI connection (sqlite3 or psycopg), statement after statement. The
  thread path runs it in a worker thread; SQLite's event-loop path runs it inline on kept-open
  connections (`SqliteLoopReads`; writes: `sqlite_loop_commits`), since a SQLite statement
  is a function call.
- `PostgresLoop`: psycopg's async pool on the event loop, each batch sent in one round trip
  through the connection's libpq (`libpq_batches`; with `Batch.commit`, the commit rides
  along).

Every driver runs the same compiled statements and hands the unit the same results: a row
named tuple (ONE), a list of them (ALL), a row count, or None.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Engine

from memori_server.storage.libpq_batches import PreparedNames, run_batch
from memori_server.storage.units import Batch, ConstraintViolation, Fetch, Op, Unit, Work

T = TypeVar("T")
FAST_PATH_WAIT = 0.2  # seconds to wait for a pooled connection before taking the thread path
_INTEGRITY_ERRORS = (sqlite3.IntegrityError, psycopg.IntegrityError)
IDLE = psycopg.pq.TransactionStatus.IDLE


class FastPathUnavailable(Exception):
    """The event-loop path cannot run the unit now (nothing was sent); take the thread path."""


class Transactions(Protocol):
    """How a DBAPI connection begins, commits and rolls back (SQLite's are explicit)."""

    def begin(self, connection: Any, writes: bool, durable: bool = True) -> None: ...

    def commit(self, connection: Any) -> None: ...

    def rollback(self, connection: Any) -> None: ...


class SqliteTransactions:
    """SQLite connections run in autocommit (isolation_level None): BEGIN is ours. Writers
    take the write lock up front (IMMEDIATE), so they queue instead of failing midway."""

    def begin(self, connection: Any, writes: bool, durable: bool = True) -> None:
        del durable  # off the loop, every commit syncs
        connection.execute("BEGIN IMMEDIATE" if writes else "BEGIN")

    def commit(self, connection: Any) -> None:
        connection.execute("COMMIT")

    def rollback(self, connection: Any) -> None:
        connection.execute("ROLLBACK")


class PsycopgTransactions:
    """psycopg begins implicitly; committing ends the transaction. A unit that need not be
    durable commits without waiting for the WAL flush."""

    def begin(self, connection: Any, writes: bool, durable: bool = True) -> None:
        del writes
        if not durable:
            connection.execute("SET LOCAL synchronous_commit TO OFF")

    def commit(self, connection: Any) -> None:
        connection.commit()

    def rollback(self, connection: Any) -> None:
        connection.rollback()


class _Finished:
    """The value a unit returned."""

    def __init__(self, value: Any) -> None:
        self.value = value


Step = Batch | _Finished


def _first(unit: Unit[T]) -> Step:
    try:
        return next(unit)
    except StopIteration as done:
        return _Finished(done.value)


def _throw(unit: Unit[T], error: Exception) -> Step:
    try:
        return unit.throw(error)
    except StopIteration as done:
        return _Finished(done.value)


def _send(unit: Unit[T], results: list[Any]) -> Step:
    try:
        return unit.send(results)
    except StopIteration as done:
        return _Finished(done.value)


def _execute_blocking(cursor: Any, op: Op) -> Any:
    statement = op.statement
    if op.many:
        rows: Sequence[Any] = op.params  # type: ignore[assignment]
        cursor.executemany(statement.sql, [statement.parameters(row) for row in rows])
    else:
        cursor.execute(statement.sql, statement.parameters(op.params))  # type: ignore[arg-type]
    if op.fetch is Fetch.ONE:
        return statement.row(cursor.fetchone())
    if op.fetch is Fetch.ALL:
        return statement.rows(cursor.fetchall())
    if op.fetch is Fetch.ROWCOUNT:
        return cursor.rowcount
    return None


def _execute_batch(connection: Any, batch: Batch) -> list[Any]:
    cursor = connection.cursor()
    try:
        return [_execute_blocking(cursor, op) for op in batch.ops]
    finally:
        cursor.close()


def run_blocking(connection: Any, transactions: Transactions, work: Work[T]) -> T:
    """Run `work` on a DBAPI connection; returns the unit's result.

    A write unit is one transaction, committed when the unit returns: nothing is committed
    before, so a unit that fails midway, or gives up its fast path, leaves no trace. (After
    a constraint violation the unit may go on, in a new transaction.) A read batch that
    commits runs without a transaction, each statement on its own.
    """
    unit = work.start()
    step = _first(unit)
    in_transaction = False
    try:
        while isinstance(step, Batch):
            if not in_transaction and (work.writes or not step.commit):
                transactions.begin(connection, work.writes, work.durable)
                in_transaction = True
            try:
                results = _execute_batch(connection, step)
            except _INTEGRITY_ERRORS as error:
                transactions.rollback(connection)
                in_transaction = False
                step = _throw(unit, ConstraintViolation(str(error)))
                continue
            if in_transaction and not work.writes and step.commit:
                transactions.commit(connection)  # a read's snapshot ends with its batch
                in_transaction = False
            step = _send(unit, results)
        if in_transaction:
            transactions.commit(connection)
            in_transaction = False
        return step.value  # type: ignore[no-any-return]
    finally:
        if in_transaction:
            with contextlib.suppress(Exception):
                transactions.rollback(connection)


class SqliteLoopReads:
    """A kept-open SQLite connection the event loop reads on directly: WAL readers never
    wait for writers, so a read never blocks the loop. (Writes: `sqlite_loop_commits`.)"""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._reader: Any = None
        self._transactions = SqliteTransactions()

    def run(self, work: Work[T]) -> T:
        assert not work.writes, "the loop's SQLite writes go through SqliteLoopCommits"
        if self._reader is None:
            self._reader = self._engine.raw_connection()
        try:
            # The sqlite3 connection itself: its statements skip the pool handle's lookups.
            return run_blocking(self._reader.dbapi_connection, self._transactions, work)
        except sqlite3.OperationalError:
            reader, self._reader = self._reader, None
            with contextlib.suppress(Exception):
                reader.invalidate()
            raise

    def close(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(Exception):
                self._reader.close()
        self._reader = None


class PostgresLoop:
    """psycopg's async pool (autocommit connections) on the event loop, batches pipelined."""

    def __init__(self, conninfo: str, pool_size: int) -> None:
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=10,
            # psycopg prepares nothing on these: its statements go through libpq_batches,
            # and a psycopg that had prepared some would answer a ROLLBACK with
            # DEALLOCATE ALL, taking ours with it.
            kwargs={"autocommit": True, "prepare_threshold": None},
        )
        self._opened = False
        self._checks: set[asyncio.Task[None]] = set()
        self._prepared = PreparedNames()

    async def run(self, work: Work[T]) -> T:
        try:
            if not self._opened:
                await self._pool.open(wait=False)
                self._opened = True
            connection = await self._pool.getconn(timeout=FAST_PATH_WAIT)
        except (psycopg.OperationalError, PoolTimeout, OSError) as error:
            self._check_soon()
            raise FastPathUnavailable(str(error)) from error
        try:
            return await _run_pipelined(connection, work, self._prepared)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            self._check_soon()  # idle connections die with a database restart: drop them
            raise
        finally:
            await self._pool.putconn(connection)

    def _check_soon(self) -> None:
        task = asyncio.get_running_loop().create_task(self._pool.check())
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def close(self) -> None:
        if self._opened:
            await self._pool.close()
            self._opened = False


async def _run_reads(
    connection: psycopg.AsyncConnection[Any], work: Work[T], prepared: PreparedNames
) -> T:
    """Run a read-only unit: each batch one round trip, outside any transaction block (its
    statements share the implicit one that ends at the batch's sync)."""
    unit = work.start()
    step = _first(unit)
    while isinstance(step, Batch):
        results = await run_batch(
            connection, step.ops, begin=False, commit=False, prepared=prepared
        )
        step = _send(unit, results)
    return step.value  # type: ignore[no-any-return]


async def _run_pipelined(
    connection: psycopg.AsyncConnection[Any], work: Work[T], prepared: PreparedNames
) -> T:
    """Run `work` with each batch pipelined: one round trip per batch, the commit included
    when the batch says so (a later batch then runs in a new transaction)."""
    if not work.writes:
        return await _run_reads(connection, work, prepared)
    unit = work.start()
    step = _first(unit)
    in_transaction = False
    try:
        while isinstance(step, Batch):
            try:
                results = await run_batch(
                    connection,
                    step.ops,
                    begin=not in_transaction,
                    commit=step.commit,
                    prepared=prepared,
                    durable=work.durable,
                )
            except psycopg.IntegrityError as error:
                await _roll_back(connection)
                in_transaction = False
                step = _throw(unit, ConstraintViolation(str(error)))
                continue
            in_transaction = not step.commit
            step = _send(unit, results)
        if in_transaction:
            await connection.execute(b"COMMIT")
            in_transaction = False
        return step.value  # type: ignore[no-any-return]
    finally:
        if in_transaction or connection.info.transaction_status != IDLE:
            with contextlib.suppress(Exception):
                await _roll_back(connection)


async def _roll_back(connection: psycopg.AsyncConnection[Any]) -> None:
    """End a failed or abandoned transaction, outside any pipeline."""
    if connection.info.transaction_status != IDLE:
        await connection.execute(b"ROLLBACK")


__all__ = [
    "FAST_PATH_WAIT",
    "FastPathUnavailable",
    "PostgresLoop",
    "PsycopgTransactions",
    "SqliteLoopReads",
    "SqliteTransactions",
    "run_blocking",
]
