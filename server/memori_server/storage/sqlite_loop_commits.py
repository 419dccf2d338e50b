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
its writes at once). Nor does it ask for a commit: its transaction stays open for the next
durable unit, whose commit syncs both, or commits as any other once it has been open for
`CLAIM_LINGER` seconds. Under load a claim thus rides with the turns' commits, and
costs its statements alone: no BEGIN, COMMIT or WAL frames of its own. Other connections
see it once that commit is done; until then this connection holds the write lock, so a
writer elsewhere (another process claiming the same request id) waits for it and then finds
it.
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
CLAIM_LINGER = 0.02
"""Seconds a transaction of units that need not be durable alone stays open for a durable
unit to join it (whose commit then carries them at no cost of their own)."""
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

    def __init__(self) -> None:
        self.committed = _Outcome()
        self.ending = False
        """Its commit has begun (or it was rolled back): no unit joins it any more."""
        self.due: asyncio.Handle | None = None
        """Its commit, scheduled: at the loop's next turn once a durable unit ran in it, else
        `CLAIM_LINGER` after its first unit."""
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
            if self._open is not None:  # its commit was due on the loop that ended
                self._open.due = None
        if loop is not self._loop or self._closed:
            raise FastPathUnavailable("the loop's SQLite write connection is another loop's")
        while self._committing is not None:  # the connection is busy with the last commit
            await self._committing.wait(loop)
        transaction = self._open
        if transaction is None:
            transaction = self._begin()
        try:
            value = run_in_savepoint(self._connection, work)
        except sqlite3.OperationalError as error:
            # The transaction itself broke (I/O, a full disk): none of it is committed, and
            # no later unit runs in it (SQLite may have ended it: they would autocommit).
            transaction.broken = error
            self._open = None
            self._abandon()
            self._schedule(loop, transaction, 0.0)  # its waiting units fail
            raise
        except BaseException:  # the unit's own failure, rolled back: the others are kept
            if transaction.due is None:  # it began the transaction: end it
                self._schedule(loop, transaction, 0.0)
            raise
        if not work.durable:  # nothing waits for its commit (carried by a durable unit's)
            if transaction.due is None:
                self._schedule(loop, transaction, CLAIM_LINGER)
            return value
        self._schedule(loop, transaction, 0.0)
        await transaction.committed.wait(loop)  # a cancelled caller's unit commits too
        return value

    def _begin(self) -> _Transaction:
        if self._connection is None:
            pooled = self._engine.raw_connection()
            connection: Any = pooled.dbapi_connection
            connection.execute("PRAGMA busy_timeout=0")
            self._pooled, self._connection = pooled, connection
        try:
            self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if _write_lock_taken(error):
                raise FastPathUnavailable("the SQLite write lock is held") from error
            self._abandon()
            raise
        transaction = self._open = _Transaction()
        return transaction

    def _schedule(
        self, loop: asyncio.AbstractEventLoop, transaction: _Transaction, delay: float
    ) -> None:
        """Commit `transaction` after `delay`, or at the loop's next turn (after the callbacks
        already due: the units woken with this one join it first); an earlier time wins."""
        due = transaction.due
        if due is not None:
            if delay or not isinstance(due, asyncio.TimerHandle):
                return  # due as soon already
            due.cancel()
        if delay:
            transaction.due = loop.call_later(delay, self._commit, transaction)
        else:
            transaction.due = loop.call_soon(self._commit, transaction)

    def _commit(self, transaction: _Transaction) -> None:
        assert self._loop is not None
        if transaction.ending:
            return
        transaction.ending = True
        if self._open is transaction:
            self._open = None
        if transaction.broken is not None:  # rolled back when it broke
            _fail(transaction, transaction.broken)
            return
        if not self._synced:  # nothing waits for the disk: commit here and now
            try:
                self._connection.execute("COMMIT")
            except sqlite3.Error as error:
                self._settle(transaction, error)
                return
            self._settle(transaction, None)
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
                assert self._open is not None
                self._schedule(loop, self._open, 0.0)  # now, not after a claim's linger
                await asyncio.sleep(0)
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
