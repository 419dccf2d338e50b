"""Small SQLite write transactions on the event loop, when the write lock is free.

A chat turn's transaction takes a fraction of a millisecond on SQLite; handing it to a
worker thread costs about as much again, and the worker's Python work competes with the
event loop for the GIL. So hot, small writes run inline on one dedicated connection whose
busy timeout is zero: if another connection (a worker thread, another process) holds the
write lock, BEGIN IMMEDIATE fails at once and the caller takes the thread path, which waits.
Nothing here ever blocks the loop on a lock.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from memori_server.storage.engine import WRITE_OPTION

T = TypeVar("T")


class WriterBusy(Exception):
    """The inline writer cannot take the write lock now; use the thread path."""


def _is_busy(error: OperationalError) -> bool:
    cause = error.orig
    return isinstance(cause, sqlite3.OperationalError) and (
        "locked" in str(cause) or "busy" in str(cause)
    )


class SqliteInlineWriter:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine.execution_options(**{WRITE_OPTION: True})
        self._connection: Connection | None = None

    def _connect(self) -> Connection:
        if self._connection is None or self._connection.closed:
            connection = self._engine.connect()
            driver = connection.connection.driver_connection  # outside any transaction
            assert driver is not None
            driver.execute("PRAGMA busy_timeout=0")
            self._connection = connection
        return self._connection

    def run(self, work: Callable[[Connection], T]) -> T:
        """`work` in one write transaction, now; WriterBusy when the lock is taken."""
        connection = self._connect()
        try:
            transaction = connection.begin()
        except OperationalError as error:
            if _is_busy(error):
                raise WriterBusy from error
            self.close()
            raise
        try:
            result = work(connection)
            transaction.commit()
        except BaseException:
            if transaction.is_active:
                transaction.rollback()
            raise
        return result

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):  # a broken connection: nothing to release
                connection.close()


__all__ = ["SqliteInlineWriter", "WriterBusy"]
