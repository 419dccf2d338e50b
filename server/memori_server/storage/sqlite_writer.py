"""SQLite's writer thread: the write units that do not run on the event loop (heavy ones,
ones that found the write lock held, all of them without fast paths) queue here and run in
groups on one thread, each group one transaction with one commit, so one sync to disk serves
every unit that waited for it. (Small writes run on the loop: `sqlite_loop_commits`.)

SQLite has one writer at a time, and with `synchronous=full` every commit waits for the
disk. A group commits once; each unit runs inside its own savepoint, so a unit that fails
(or meets a constraint and goes on) leaves no trace of itself while the others are kept. A
unit's result is handed back only after the group's commit: an acknowledged turn is on disk.
If the commit fails, every unit of the group fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine

from memori_server.errors import StorageUnavailable
from memori_server.storage.drivers import run_blocking
from memori_server.storage.units import Work

T = TypeVar("T")
MAX_GROUP = 64  # units per transaction: bounds what one failed commit takes down with it


class _SavepointTransactions:
    """A unit's transaction is a savepoint of the group's (SQLite keeps it open after ROLLBACK
    TO, so a unit that goes on after a constraint violation continues inside it)."""

    def begin(self, connection: Any, writes: bool, durable: bool = True) -> None:
        del connection, writes, durable

    def commit(self, connection: Any) -> None:
        del connection

    def rollback(self, connection: Any) -> None:
        connection.execute("ROLLBACK TO unit")


_SAVEPOINTS = _SavepointTransactions()


@dataclass(slots=True)
class _Queued:
    work: Work[Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    value: Any = None
    error: BaseException | None = field(default=None)


class SqliteWriter:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Any = None
        self._pending: list[_Queued] = []
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.commits = 0
        """Groups committed: fewer than units whenever writes arrive together."""

    async def run(self, work: Work[T]) -> T:
        loop = asyncio.get_running_loop()
        queued = _Queued(work, loop, loop.create_future())
        with self._wake:
            if self._closed:  # a call that outlived shutdown's grace: retry elsewhere
                raise StorageUnavailable("the database is closing; retry later")
            self._pending.append(queued)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="memori-db-writer", daemon=True
                )
                self._thread.start()
            self._wake.notify()
        return await queued.future  # type: ignore[no-any-return]

    def close(self) -> None:
        """Finish the queued units, then stop the thread and close its connection (blocks:
        call it from a thread)."""
        with self._wake:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if not self._pending:
                    break
                group = self._pending[:MAX_GROUP]
                del self._pending[:MAX_GROUP]
            self._run_group(group)
            _deliver(group)
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _run_group(self, group: list[_Queued]) -> None:
        try:
            if self._connection is None:
                self._connection = self._engine.raw_connection()
            connection = self._connection
            connection.execute("BEGIN IMMEDIATE")
            for queued in group:  # a cancelled caller's unit runs too, as on any thread
                self._run_unit(connection, queued)
            connection.execute("COMMIT")
            self.commits += 1
        except BaseException as error:  # the group's transaction is lost: all of it
            self._abandon()
            for queued in group:
                queued.value, queued.error = None, queued.error or error
            if not isinstance(error, Exception):
                raise

    def _run_unit(self, connection: Any, queued: _Queued) -> None:
        try:
            queued.value = run_in_savepoint(connection, queued.work)
        except sqlite3.OperationalError:
            raise  # the connection or the transaction broke: the group fails
        except Exception as error:  # the unit's own failure
            queued.error = error

    def _abandon(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            discard(connection)


def discard(connection: Any) -> None:
    """Roll back what a broken transaction left and invalidate its pooled connection, so
    that it is never used again."""
    with contextlib.suppress(sqlite3.Error):
        connection.execute("ROLLBACK")
    connection.invalidate()


def run_in_savepoint(connection: Any, work: Work[T]) -> T:
    """Run a write unit inside the open transaction: what it wrote is kept, or, if it fails,
    rolled back to its start (its error raised) while the transaction goes on. An
    `sqlite3.OperationalError` means the transaction itself broke."""
    connection.execute("SAVEPOINT unit")
    try:
        value = run_blocking(connection, _SAVEPOINTS, work)
    except sqlite3.OperationalError:
        raise
    except Exception:
        connection.execute("RELEASE unit")  # its writes are rolled back already
        raise
    connection.execute("RELEASE unit")
    return value


def _deliver(group: list[_Queued]) -> None:
    """Hand each result to its event loop: one wake-up per loop for the whole group."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Queued]] = {}
    for queued in group:
        by_loop.setdefault(queued.loop, []).append(queued)
    for loop, queued_here in by_loop.items():
        # A closed loop raises RuntimeError: nobody waits for these any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, queued_here)


def _settle(group: list[_Queued]) -> None:
    for queued in group:
        if queued.future.done():  # cancelled while it ran
            continue
        if queued.error is not None:
            queued.future.set_exception(queued.error)
        else:
            queued.future.set_result(queued.value)


__all__ = ["SqliteWriter", "discard", "run_in_savepoint"]
