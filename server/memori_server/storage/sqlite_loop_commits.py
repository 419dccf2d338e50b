"""SQLite's small writes on the event loop, with their commits (the sync to disk) on a thread.

With `synchronous=full` every commit waits for the disk, which the event loop must not. The
writer thread (`sqlite_writer`) avoids that by running whole units, but there the thread and
the loop take turns at the GIL at every statement and every row the unit reads (sqlite3
lets go of it around each step): about nine thread switches per stored turn under load,
more CPU than the statements themselves. Here only the COMMIT leaves the loop:

- A unit's statements run on the loop, inline (a SQLite statement is a function call; the
  write lock is this connection's, so nothing waits), inside the open transaction and in a
  savepoint of their own: a unit that fails leaves no trace and the others are kept.
- Units that arrive in the same turn of the loop join that transaction; then one COMMIT runs
  on a thread. Each unit's result is given only once its commit is done: an acknowledged
  write is on disk. If the commit fails, every unit of the transaction fails.
- Units that arrive while a commit runs wait for it, and form the next transaction.
- The connection's busy timeout is zero: while another connection holds the write lock (the
  writer thread's heavy units, another process), BEGIN fails at once and the unit takes the
  writer thread, which waits for the lock.

With `synchronous=normal` nothing waits for the disk, and the commits run on the loop too.

A unit that need not be durable (`Work.durable`: a request id's claim) does not wait for the
disk, nor for its commit: its result is given once its statements ran (this connection sees
its writes at once; others once the commit, due in this turn of the loop or the next, is
done). Alone in its transaction it commits on the loop, unsynced (SQLite fixes a
transaction's sync level at BEGIN, so the connection is switched to `synchronous=NORMAL`
before it and back after it). Such a commit never checkpoints (the WAL's auto-checkpoint is
off for it: copying the WAL into the database syncs, which is the thread's work). A durable
unit never joins an unsynced transaction: that one commits at once and the durable unit
begins the next. A synced commit later makes the unsynced ones before it durable too (it
syncs the whole WAL).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine

from memori_server.storage.drivers import FastPathUnavailable
from memori_server.storage.sqlite_writer import discard, run_in_savepoint
from memori_server.storage.units import Work

T = TypeVar("T")
# The commit to run, the loop to tell, and what the loop then calls with its outcome.
_Commit = tuple[
    Callable[[], None], asyncio.AbstractEventLoop, Callable[[BaseException | None], None]
]


class _Outcome:
    """Something units wait for, each on a future of its own, so that a cancelled unit
    cancels only its own wait. (`asyncio.shield` of one shared future did the same with
    three callbacks per waiter, where this takes one: its task's wake-up.)"""

    __slots__ = ("_waiters", "done", "error")

    def __init__(self) -> None:
        self.done = False
        self.error: BaseException | None = None
        self._waiters: list[asyncio.Future[None]] = []

    def wait(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        waiter = loop.create_future()
        if self.done:
            _answer(waiter, self.error)
        else:
            self._waiters.append(waiter)
        return waiter

    def settle(self, error: BaseException | None = None) -> None:
        self.done, self.error = True, error
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():  # else its unit was cancelled meanwhile
                _answer(waiter, error)


def _answer(waiter: asyncio.Future[None], error: BaseException | None) -> None:
    if error is None:
        waiter.set_result(None)
    else:
        waiter.set_exception(error)


class _Transaction:
    """The open transaction: the units that ran in it wait for `committed`."""

    def __init__(self, *, synced: bool) -> None:
        self.committed = _Outcome()
        self.synced = synced
        """Its commit waits for the disk (on the thread); else it commits on the loop."""
        self.broken: BaseException | None = None
        """Set when a statement broke the transaction itself: it is rolled back, not
        committed."""


class SqliteLoopCommits:
    """One kept-open write connection, used on its event loop; its synced commits on one
    thread."""

    def __init__(self, engine: Engine, *, synced: bool) -> None:
        """`synced`: commits wait for the disk (synchronous=full), so they run on a thread;
        otherwise on the loop, inline."""
        self._engine = engine
        self._synced = synced
        self._pooled: Any = None
        """The pool's handle of the connection: it closes or invalidates it."""
        self._connection: Any = None
        """The sqlite3 connection itself: statements skip the pool handle's attribute lookup."""
        self._autocheckpoint = 0
        """The connection's own WAL auto-checkpoint (pages), restored after an unsynced commit."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open: _Transaction | None = None
        self._committing: _Outcome | None = None
        """Settled (never failed) when the commit in flight has ended."""
        # The commit thread's work; None ends it. A queue and a thread of our own:
        # run_in_executor's futures, chained into the loop's, cost the loop more per commit.
        self._commits: queue.SimpleQueue[_Commit | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.commit_on_thread: Callable[[Any], None] = _execute_commit
        """What the commit thread runs for a connection (tests hold it at a gate)."""
        self._closed = False
        self.commits = 0
        """Transactions committed: fewer than units whenever writes arrive together."""

    async def run(self, work: Work[T]) -> T:
        loop = asyncio.get_running_loop()
        if self._loop is None or (self._loop.is_closed() and self._committing is None):
            self._loop = loop  # the first loop, or the next one once it has ended
        if loop is not self._loop or self._closed:
            raise FastPathUnavailable("the loop's SQLite write connection is another loop's")
        while self._committing is not None:  # the connection is busy with the last commit
            await self._committing.wait(loop)
        transaction = self._open
        if transaction is not None and self._synced and work.durable and not transaction.synced:
            self._commit(transaction)  # now, on the loop: the durable unit begins the next
            transaction = None
        if transaction is None:
            transaction = self._begin(loop, synced=self._synced and work.durable)
        try:
            value = run_in_savepoint(self._connection, work)
        except sqlite3.OperationalError as error:
            # The transaction itself broke (I/O, a full disk): none of it is committed, and
            # no later unit runs in it (SQLite may have ended it: they would autocommit).
            transaction.broken = error
            self._open = None
            self._abandon()
            raise
        if not work.durable:  # nothing waits for its commit (due now, or synced with others)
            return value
        await transaction.committed.wait(loop)  # a cancelled caller's unit commits too
        return value

    def _begin(self, loop: asyncio.AbstractEventLoop, *, synced: bool) -> _Transaction:
        if self._connection is None:
            pooled = self._engine.raw_connection()
            connection: Any = pooled.dbapi_connection
            connection.execute("PRAGMA busy_timeout=0")
            (self._autocheckpoint,) = connection.execute("PRAGMA wal_autocheckpoint").fetchone()
            self._pooled, self._connection = pooled, connection
        unsynced = self._synced and not synced
        if unsynced:
            self._sync_commits(False)
        try:
            self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if unsynced:
                self._sync_commits(True)
            if _write_lock_taken(error):
                raise FastPathUnavailable("the SQLite write lock is held") from error
            self._abandon()
            raise
        transaction = self._open = _Transaction(synced=synced)
        # After the callbacks already due: the units woken with this one join it first.
        loop.call_soon(self._commit, transaction)
        return transaction

    def _commit(self, transaction: _Transaction) -> None:
        assert self._loop is not None
        if transaction.committed.done:  # committed early, for a durable unit
            return
        if self._open is transaction:
            self._open = None
        if transaction.broken is not None:  # rolled back when it broke
            _fail(transaction, transaction.broken)
            return
        if not transaction.synced:  # nothing waits for the disk: commit here and now
            try:
                self._connection.execute("COMMIT")
            except sqlite3.Error as error:
                self._settle(transaction, error)
                return
            self._settle(transaction, None)
            if self._synced:
                self._sync_commits(True)
            return
        ended = self._committing = _Outcome()
        if self._thread is None:
            self._thread = threading.Thread(
                target=_commit_thread, args=(self._commits,), name="memori-db-commit", daemon=True
            )
            self._thread.start()
        # The thread runs COMMIT to its end whatever happens to the callers meanwhile.
        settle = functools.partial(self._ended, transaction, ended)
        commit = functools.partial(self.commit_on_thread, self._connection)
        self._commits.put((commit, self._loop, settle))

    def _ended(
        self, transaction: _Transaction, ended: _Outcome, error: BaseException | None
    ) -> None:
        """On the loop, once the thread's COMMIT has ended."""
        try:
            self._settle(transaction, error)
        finally:
            self._committing = None  # whatever happened, the next units go on
            ended.settle()

    def _settle(self, transaction: _Transaction, error: BaseException | None) -> None:
        """Its units' answer once COMMIT has run: done, or (the connection dropped) failed."""
        if error is None:
            self.commits += 1
            transaction.committed.settle()
        else:
            self._abandon()
            _fail(transaction, error)

    def _sync_commits(self, synced: bool) -> None:
        """Switch the (idle) connection's commits between synced and unsynced; a connection
        that cannot be switched back is dropped: outside an unsynced transaction it syncs."""
        level, pages = ("FULL", self._autocheckpoint) if synced else ("NORMAL", 0)
        try:
            self._connection.execute(f"PRAGMA synchronous={level}")
            self._connection.execute(f"PRAGMA wal_autocheckpoint={pages}")
        except sqlite3.Error:
            self._abandon()
            raise

    def _abandon(self) -> None:
        pooled, self._pooled, self._connection = self._pooled, None, None
        if pooled is not None:
            discard(pooled)

    async def close(self) -> None:
        """Wait for the transaction in progress to commit, then close the connection."""
        self._closed = True
        loop = asyncio.get_running_loop()
        here = loop is self._loop
        while here and (self._open is not None or self._committing is not None):
            if self._committing is not None:
                await self._committing.wait(loop)
            else:
                await asyncio.sleep(0)  # its commit is due on this loop
        if self._pooled is not None:
            with contextlib.suppress(Exception):
                self._pooled.close()
            self._pooled = self._connection = None
        self._commits.put(None)


def _execute_commit(connection: Any) -> None:
    connection.execute("COMMIT")


def _commit_thread(commits: queue.SimpleQueue[_Commit | None]) -> None:
    """Run each commit given, then tell its loop how that ended."""
    while (item := commits.get()) is not None:
        commit, loop, settle = item
        error: BaseException | None = None
        try:
            commit()
        except BaseException as failure:  # the loop's units get it
            error = failure
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(settle, error)


def _write_lock_taken(error: sqlite3.OperationalError) -> bool:
    """Whether BEGIN IMMEDIATE was refused because another connection holds the lock."""
    return "locked" in str(error) or "busy" in str(error)


def _fail(transaction: _Transaction, error: BaseException) -> None:
    transaction.committed.settle(error)  # each waiting unit raises it; none may be waiting


__all__ = ["SqliteLoopCommits"]
