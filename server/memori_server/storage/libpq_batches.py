"""One batch of compiled statements in one round trip, sent through the connection's libpq.

psycopg's cursors, pipeline object and waits cost 60-80 µs of CPU per statement here (a
cursor, a prepare manager, a queue of results for cursors, a wait per step), more than the
statement's round trip, and a stored turn is BEGIN, four or five statements and COMMIT. So
the event-loop driver sends a batch itself on the pooled connection's libpq handle
(`connection.pgconn`, psycopg's public libpq wrapper): several statements in libpq's pipeline
mode with one sync, a lone one plainly, and waits on the socket with the event loop. psycopg
still does what it is for:
- parameters are adapted by its `Transformer` with the connection's adapters, and rows loaded
  by it, as a cursor would;
- an error is its exception class for the SQLSTATE (`IntegrityError`, ...).

Each statement is prepared on a connection at its first use (psycopg prepared after five
uses) under a name of its own; psycopg itself prepares nothing on these connections (see
`PostgresLoop`). PostgreSQL keeps the plan it makes for a prepared statement (at its sixth
run) until the table is analyzed again, and a plan made while a table was nearly empty can
be a scan of it (a sequential scan, or an index that matches the tenant alone): one request
id record's lookup scanned 3,400 records after a few thousand turns on a new database with
autovacuum off, and took 5 to 10 ms. So a statement is prepared again, the old one closed in
the same round trip, after 64 runs on the connection, then 128, 256 and so on: its plan
follows the tables as they grow, at a cost that halves each time.
A connection is handed back out of pipeline mode with every result read; one cut short (a
cancelled call, a lost server) is closed, so the pool drops it, and what a cancelled call
left running on the server is cancelled there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import errors, pq
from psycopg.adapt import PyFormat, Transformer

from memori_server.storage.compiled import CompiledStatement
from memori_server.storage.units import Fetch, Op

_BEGIN = b"BEGIN"
_COMMIT = b"COMMIT"
# A unit that need not be durable (`Work.durable`): its commit does not wait for the WAL flush.
_WITHOUT_FLUSH = b"SET LOCAL synchronous_commit TO OFF"
_FAILED = pq.ExecStatus.FATAL_ERROR
_SYNC = pq.ExecStatus.PIPELINE_SYNC
_PREPARED = pq.ExecStatus.COMMAND_OK
_AUTO = PyFormat.AUTO
_BUSY = pq.TransactionStatus.ACTIVE
_CANCEL_WAIT = 2.0  # seconds for the server to take a cancel request
_NAME_NUMBERS = itertools.count()
# A statement prepared again closes the old one by the protocol's Close message (libpq 17 and
# later): PgBouncer, which renames prepared statements, passes it on, where SQL's DEALLOCATE
# would name a statement the server does not know. With an older libpq the old one stays
# prepared until the connection closes: about twenty per statement in a million runs.
_CLOSES_STATEMENTS = pq.version() >= 170000


FIRST_REPLAN = 64
"""Runs of a statement on a connection before it is prepared again (then twice as many)."""

_Key = tuple[bytes, tuple[int, ...]]
"""A statement's SQL and parameter types."""


class Prepared:
    """A statement prepared on one connection, and how many runs its plan has left."""

    __slots__ = ("name", "runs", "runs_left")

    def __init__(self, name: bytes, runs: int) -> None:
        self.name = name
        self.runs = runs
        self.runs_left = runs


class PreparedNames:
    """The statements prepared on each live connection, by SQL and parameter types."""

    def __init__(self) -> None:
        self._by_connection: weakref.WeakKeyDictionary[
            psycopg.AsyncConnection[Any], dict[_Key, Prepared]
        ] = weakref.WeakKeyDictionary()

    def on(self, connection: psycopg.AsyncConnection[Any]) -> dict[_Key, Prepared]:
        names = self._by_connection.get(connection)
        if names is None:
            names = self._by_connection[connection] = {}
        return names


def _new_name() -> bytes:
    """Never reused in this process, so a name whose PREPARE fate is unknown (a batch that
    failed) is never prepared twice on a connection."""
    return b"memori_%d" % next(_NAME_NUMBERS)


class _Request:
    """What one batch sends, and which of its results are whose."""

    def __init__(self, connection: psycopg.AsyncConnection[Any], prepared: PreparedNames):
        self.pgconn = connection.pgconn
        self.transformer = Transformer(connection)
        self.names = prepared.on(connection)
        self.commands: list[Callable[[], None]] = []
        self.owners: list[int | None] = []
        """Per command, the index of the op it runs (None: BEGIN, COMMIT, a PREPARE, a Close)."""
        self.preparing: dict[int, tuple[_Key, Prepared]] = {}
        """Command index of each PREPARE sent, with the key and the statement it prepares."""
        self._fresh: dict[_Key, Prepared] = {}
        """The statements this batch prepares (a second run in it uses the same)."""

    def plain(self, sql: bytes) -> None:
        self.commands.append(lambda: self.pgconn.send_query_params(sql, None))
        self.owners.append(None)

    def execute(self, index: int, statement: CompiledStatement, values: Any) -> None:
        parameters = statement.numbered_parameters(values)
        transformer = self.transformer
        buffers = transformer.dump_sequence(parameters, [_AUTO] * len(parameters))
        types = tuple(transformer.types or ())
        formats = list(transformer.formats or ())
        key = (statement.numbered_sql, types)
        current = self._fresh.get(key)
        if current is None:
            current = self.names.get(key)
            if current is None or current.runs_left <= 0:
                current = self._prepare(key, current)
        current.runs_left -= 1
        name = current.name
        self.commands.append(
            lambda: self.pgconn.send_query_prepared(name, buffers, param_formats=formats)
        )
        self.owners.append(index)

    def _prepare(self, key: _Key, replaced: Prepared | None) -> Prepared:
        """PREPARE the statement under a new name (and close the one it replaces, whose plan
        was made when the tables were smaller)."""
        fresh = Prepared(_new_name(), FIRST_REPLAN if replaced is None else replaced.runs * 2)
        self._fresh[key] = fresh
        self.preparing[len(self.commands)] = (key, fresh)
        sql, types = key
        name = fresh.name
        self.commands.append(lambda: self.pgconn.send_prepare(name, sql, param_types=types))
        self.owners.append(None)
        if replaced is not None and _CLOSES_STATEMENTS:
            old = replaced.name
            self.commands.append(lambda: self.pgconn.send_close_prepared(old))
            self.owners.append(None)
        return fresh


async def run_batch(
    connection: psycopg.AsyncConnection[Any],
    batch_ops: Sequence[Op],
    *,
    begin: bool,
    commit: bool,
    prepared: PreparedNames,
    durable: bool = True,
) -> list[Any]:
    """Send BEGIN (when asked), the ops and COMMIT (when asked) in one pipeline and one
    sync; return each op's result as the unit expects it. Raises the first statement's
    error as psycopg's exception; the server skipped the rest (a queued COMMIT too), and the
    caller rolls back an open transaction."""
    request = _Request(connection, prepared)
    if begin:
        request.plain(_BEGIN)
        if not durable:
            request.plain(_WITHOUT_FLUSH)
    for index, op in enumerate(batch_ops):
        if op.many and op.fetch in (Fetch.ONE, Fetch.ALL):
            raise psycopg.ProgrammingError("rows are fetched from a single execution only")
        for values in op.params if op.many else (op.params,):
            request.execute(index, op.statement, values)
    if commit:
        request.plain(_COMMIT)
    results = await _exchange(connection, request.commands)
    # Prepared statements outlive a failed transaction. A PREPARE the server skipped (after
    # an error) skipped the Close after it too: the statement it replaces stays in use.
    for command, (key, fresh) in request.preparing.items():
        if results[command].status == _PREPARED:
            request.names[key] = fresh
    first_error = next((result for result in results if result.status == _FAILED), None)
    if first_error is not None:
        error = errors.error_from_result(first_error, encoding=connection.info.encoding)
        if isinstance(error, errors.InvalidSqlStatementName):
            request.names.clear()  # deallocated behind our back: prepare again next time
        raise error
    return _results(request, batch_ops, results)


async def _exchange(
    connection: psycopg.AsyncConnection[Any], commands: list[Callable[[], None]]
) -> list[pq.abc.PGresult]:
    """One round trip, one result per command. Several commands go in pipeline mode with
    one sync (the server skips the rest after an error, answering PIPELINE_ABORTED); a lone
    one is sent plainly. Anything cutting the exchange short closes the connection, since
    nothing more could be read from it in order."""
    pgconn = connection.pgconn
    pipelined = len(commands) > 1
    results: list[pq.abc.PGresult] = []
    try:
        if pipelined:
            pgconn.enter_pipeline_mode()
        for command in commands:
            command()
        if pipelined:
            pgconn.pipeline_sync()
        while pgconn.flush():  # a large batch: the server may answer while we still send
            await _socket_ready(pgconn.socket, write=True)
            pgconn.consume_input()
        while True:
            while pgconn.is_busy():
                await _socket_ready(pgconn.socket, write=False)
                pgconn.consume_input()
            result = pgconn.get_result()
            if result is None:  # the end of one command's results
                if pipelined:
                    continue
                break
            if result.status == _SYNC:
                break
            results.append(result)
        if pipelined:
            pgconn.exit_pipeline_mode()
    except BaseException as error:
        try:
            if isinstance(error, asyncio.CancelledError):
                await _cancel_on_server(connection)
        finally:
            pgconn.finish()
        raise
    if len(results) != len(commands):
        pgconn.finish()
        raise psycopg.OperationalError(
            f"{len(commands)} commands sent, {len(results)} results read: connection closed"
        )
    return results


async def _cancel_on_server(connection: psycopg.AsyncConnection[Any]) -> None:
    """A call given up mid-batch: ask the server to cancel what it runs, so a statement
    waiting on a lock does not go on to commit the batch once it has it (the batch, COMMIT
    included, is already on the server's side). Best effort, as psycopg's own."""
    if connection.pgconn.transaction_status == _BUSY:
        with contextlib.suppress(Exception):
            await connection.cancel_safe(timeout=_CANCEL_WAIT)


async def _socket_ready(socket: int, *, write: bool) -> None:
    """Until the socket can be read (or, with `write`, written or read)."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(socket, wake)
    if write:
        loop.add_writer(socket, wake)
    try:
        await ready
    finally:
        loop.remove_reader(socket)
        if write:
            loop.remove_writer(socket)


def _results(
    request: _Request, batch_ops: Sequence[Op], results: list[pq.abc.PGresult]
) -> list[Any]:
    transformer = request.transformer
    outcomes: list[Any] = [None] * len(batch_ops)
    counts = [0] * len(batch_ops)
    for owner, result in zip(request.owners, results, strict=True):
        if owner is None:
            continue
        op = batch_ops[owner]
        if op.fetch is Fetch.ROWCOUNT:
            counts[owner] += result.command_tuples or 0
            outcomes[owner] = counts[owner]
        elif op.fetch is Fetch.ONE:
            transformer.set_pgresult(result)
            raw = transformer.load_row(0, tuple) if result.ntuples else None
            outcomes[owner] = op.statement.row(raw)
        elif op.fetch is Fetch.ALL:
            transformer.set_pgresult(result)
            outcomes[owner] = op.statement.rows(transformer.load_rows(0, result.ntuples, tuple))
    return outcomes


__all__ = ["FIRST_REPLAN", "Prepared", "PreparedNames", "run_batch"]
