"""The event-loop driver's batches on PostgreSQL (`libpq_batches`): what they read back is
what psycopg's cursors read, an error stops the batch with nothing of it kept, a call cut
short closes its connection, and prepared statements survive what could take them away."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from memori_server.domain import Attribution
from memori_server.storage import libpq_batches
from memori_server.storage import statements as sql
from memori_server.storage.compiled import CompiledStatement
from memori_server.storage.database import Database
from memori_server.storage.drivers import PostgresLoop
from memori_server.storage.engine import create_engine as memori_engine
from memori_server.storage.libpq_batches import FIRST_REPLAN, PreparedNames, run_batch
from memori_server.storage.migrate import migrate
from memori_server.storage.records import NewMessage
from memori_server.storage.statements import Statements
from memori_server.storage.units import ConstraintViolation, Fetch, Op, Unit, Work, ops
from sqlalchemy import create_engine, text

from tests.factories import new_id

pytestmark = pytest.mark.postgres

TENANT = "default"
WHO = Attribution("entity-1", "process-1")
NOW = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
DIALECT = create_engine("postgresql+psycopg://").dialect
STATEMENTS = Statements(DIALECT)


def _migrated(url: str) -> None:
    async def run() -> None:
        database = Database(url, 1)
        try:
            await migrate(database)
        finally:
            await database.close()

    asyncio.run(run())


def _text(statement: str) -> CompiledStatement:
    return CompiledStatement(text(statement), DIALECT)


def _run(url: str, body: Callable[[psycopg.AsyncConnection[Any]], Coroutine[Any, Any, Any]]) -> Any:
    async def run() -> Any:
        connection = await psycopg.AsyncConnection.connect(
            url, autocommit=True, prepare_threshold=None
        )
        try:
            return await body(connection)
        finally:
            await connection.close()

    return asyncio.run(run())


def _turn(session_id: str) -> list[Op]:
    key = sql.owner(TENANT, session_id, WHO)
    turn = [
        NewMessage(role="user", content="héllo, ünïcode ✓", token_count=4),
        NewMessage(
            role="assistant",
            content=None,
            tool_calls=[{"id": "c1", "type": "function", "function": {"name": "f"}}],
            token_count=7,
        ),
    ]
    return [
        Op(STATEMENTS.insert_session, {**key, "now": NOW}),
        *sql.append_ops(STATEMENTS, key, turn, NOW),
    ]


def _reads(session_id: str) -> list[Op]:
    this = {"tenant_id": TENANT, "session_id": session_id}
    return [
        Op(STATEMENTS.session_by_id, this, Fetch.ONE),
        Op(STATEMENTS.session_by_id, {"tenant_id": TENANT, "session_id": new_id()}, Fetch.ONE),
        Op(
            STATEMENTS.history_before,
            {**this, "before": 10, "limit": 10},
            Fetch.ALL,
        ),
    ]


async def _through_cursors(
    connection: psycopg.AsyncConnection[Any], batch: Sequence[Op]
) -> list[Any]:
    """The same ops the way psycopg's cursors run them (the driver before this one)."""
    results: list[Any] = []
    for op in batch:
        cursor = connection.cursor()
        statement = op.statement
        if op.many:
            rows: Any = op.params
            await cursor.executemany(statement.sql, [statement.parameters(row) for row in rows])
        else:
            await cursor.execute(statement.sql, statement.parameters(op.params))  # type: ignore[arg-type]
        if op.fetch is Fetch.ONE:
            results.append(statement.row(await cursor.fetchone()))
        elif op.fetch is Fetch.ALL:
            results.append(statement.rows(await cursor.fetchall()))
        elif op.fetch is Fetch.ROWCOUNT:
            results.append(cursor.rowcount)
        else:
            results.append(None)
    return results


def _status(connection: psycopg.AsyncConnection[Any]) -> psycopg.pq.TransactionStatus:
    return connection.info.transaction_status


async def _prepared_count(connection: psycopg.AsyncConnection[Any]) -> int:
    row = await (await connection.execute("SELECT count(*) FROM pg_prepared_statements")).fetchone()
    assert row is not None
    return int(row[0])


def test_a_batch_reads_back_what_psycopgs_cursors_read(fresh_postgres_url: str) -> None:
    _migrated(fresh_postgres_url)
    ours, theirs = new_id(), new_id()

    async def body(connection: psycopg.AsyncConnection[Any]) -> None:
        prepared = PreparedNames()
        written = await run_batch(
            connection, _turn(ours), begin=True, commit=True, prepared=prepared
        )
        async with connection.transaction():
            expected_written = await _through_cursors(connection, _turn(theirs))
        assert written[1]._replace(id=theirs) == expected_written[1]  # the counted session
        assert written[0] is None
        assert written[2] is None
        prepared_counts = []
        for _ in range(3):  # prepared on the first run, reused after
            lone = await run_batch(
                connection, _reads(ours)[:1], begin=False, commit=False, prepared=prepared
            )
            read = await run_batch(
                connection, _reads(ours), begin=False, commit=False, prepared=prepared
            )
            expected = await _through_cursors(connection, _reads(ours))
            assert lone == expected[:1]
            assert read == expected
            prepared_counts.append(await _prepared_count(connection))
        assert prepared_counts[0] == prepared_counts[-1]
        session, missing, history = read
        assert session.message_count == 2
        assert session.create_time == NOW
        assert missing is None
        assert [row.content for row in history] == [None, "héllo, ünïcode ✓"]
        assert history[0].tool_calls == [
            {"id": "c1", "type": "function", "function": {"name": "f"}}
        ]
        counted = await run_batch(
            connection,
            [
                Op(
                    _text("DELETE FROM messages WHERE session_id = :id"),
                    [{"id": ours}, {"id": theirs}],
                    Fetch.ROWCOUNT,
                )
            ],
            begin=True,
            commit=True,
            prepared=prepared,
        )
        assert counted == [4]

    _run(fresh_postgres_url, body)


def test_an_error_stops_the_batch_and_keeps_nothing_of_it(fresh_postgres_url: str) -> None:
    _migrated(fresh_postgres_url)
    session_id = new_id()

    async def body(connection: psycopg.AsyncConnection[Any]) -> None:
        prepared = PreparedNames()
        again = [Op(STATEMENTS.insert_session, {**sql.owner(TENANT, session_id, WHO), "now": NOW})]
        with pytest.raises(psycopg.errors.UniqueViolation):
            await run_batch(
                connection, _turn(session_id) + again, begin=True, commit=True, prepared=prepared
            )
        assert _status(connection) is psycopg.pq.TransactionStatus.INERROR
        await connection.execute("ROLLBACK")
        (read, _, history) = await run_batch(
            connection, _reads(session_id), begin=False, commit=False, prepared=prepared
        )
        assert read is None
        assert history == []
        # Without a BEGIN, the statements before the sync share one implicit transaction.
        with pytest.raises(psycopg.errors.UniqueViolation):
            await run_batch(
                connection, _turn(session_id) + again, begin=False, commit=False, prepared=prepared
            )
        assert _status(connection) is psycopg.pq.TransactionStatus.IDLE
        read, _, _ = await run_batch(
            connection, _reads(session_id), begin=False, commit=False, prepared=prepared
        )
        assert read is None

    _run(fresh_postgres_url, body)


def test_statements_deallocated_behind_its_back_are_prepared_again(fresh_postgres_url: str) -> None:
    _migrated(fresh_postgres_url)

    async def body(connection: psycopg.AsyncConnection[Any]) -> None:
        prepared = PreparedNames()
        reads = _reads(new_id())[:1]
        await run_batch(connection, reads, begin=False, commit=False, prepared=prepared)
        await connection.execute("DEALLOCATE ALL")
        with pytest.raises(psycopg.errors.InvalidSqlStatementName):
            await run_batch(connection, reads, begin=False, commit=False, prepared=prepared)
        assert await run_batch(connection, reads, begin=False, commit=False, prepared=prepared) == [
            None
        ]

    _run(fresh_postgres_url, body)


async def _server_names(connection: psycopg.AsyncConnection[Any]) -> set[bytes]:
    cursor = await connection.execute("SELECT name FROM pg_prepared_statements")
    return {row[0].encode() for row in await cursor.fetchall()}


async def _plan(connection: psycopg.AsyncConnection[Any], name: bytes, *values: str) -> str:
    """The plan PostgreSQL uses for the prepared statement `name` with these values."""
    arguments = ", ".join(f"'{value}'" for value in values)
    cursor = await connection.execute(f"EXPLAIN EXECUTE {name.decode()}({arguments})")
    return "\n".join(row[0] for row in await cursor.fetchall())


def test_a_statement_is_planned_again_as_its_table_grows(fresh_postgres_url: str) -> None:
    """A request id's lookup planned while its table was nearly empty scanned every record
    of the tenant (one index matches the tenant alone) long after the table had grown:
    nothing analyzes it without autovacuum, and nothing else makes PostgreSQL plan a
    prepared statement again. Prepared again after FIRST_REPLAN runs, it uses the key."""
    _migrated(fresh_postgres_url)
    claim = [Op(STATEMENTS.claim_row, {"tenant_id": TENANT, "request_id": "r-0"}, Fetch.ONE)]

    async def body(connection: psycopg.AsyncConnection[Any]) -> None:
        prepared = PreparedNames()
        for _ in range(10):  # PostgreSQL keeps a plan from the sixth run on
            await run_batch(connection, claim, begin=True, commit=True, prepared=prepared)
        await connection.execute(
            "INSERT INTO completion_requests (tenant_id, request_id, kind, fingerprint, state,"
            " session_id, create_time, expire_time, owner) SELECT %s, 'r-' || n, 'chat', 'f',"
            " 'done', 's-' || (n %% 32), now(), now(), 'o' FROM generate_series(1, 20000) n",
            (TENANT,),
        )
        for _ in range(FIRST_REPLAN):
            await run_batch(connection, claim, begin=True, commit=True, prepared=prepared)
        (statement,) = prepared.on(connection).values()
        assert statement.runs == 2 * FIRST_REPLAN  # prepared again, to last twice as long
        plan = await _plan(connection, statement.name, TENANT, "r-7")
        assert "pk_completion_requests" in plan, plan
        assert "request_id" in plan.split("Index Cond:")[1].splitlines()[0], plan
        assert await _server_names(connection) == {statement.name}  # the old one closed

    _run(fresh_postgres_url, body)


def test_with_a_libpq_that_cannot_close_the_old_statement_stays_prepared(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libpq before 17 sends no Close message; SQL's DEALLOCATE would miss the statement
    behind PgBouncer (it renames them), so the old one is left until the connection ends."""
    _migrated(fresh_postgres_url)
    monkeypatch.setattr(libpq_batches, "_CLOSES_STATEMENTS", False)
    read = _reads(new_id())[:1]

    async def body(connection: psycopg.AsyncConnection[Any]) -> None:
        prepared = PreparedNames()
        await run_batch(connection, read, begin=False, commit=False, prepared=prepared)
        (first,) = prepared.on(connection).values()
        for _ in range(FIRST_REPLAN):
            await run_batch(connection, read, begin=False, commit=False, prepared=prepared)
        (second,) = prepared.on(connection).values()
        assert second.name != first.name
        assert await _server_names(connection) == {first.name, second.name}

    _run(fresh_postgres_url, body)


def test_a_failed_batch_keeps_the_statements_it_prepared(fresh_postgres_url: str) -> None:
    """Prepared statements outlive the transaction: what the driver records as prepared is
    what the server holds, after a batch that failed past a statement's new PREPARE too."""
    _migrated(fresh_postgres_url)
    session_id = new_id()
    read = _reads(session_id)[:1]
    again = [Op(STATEMENTS.insert_session, {**sql.owner(TENANT, session_id, WHO), "now": NOW})]

    async def body(connection: psycopg.AsyncConnection[Any]) -> None:
        prepared = PreparedNames()
        await run_batch(connection, again, begin=True, commit=True, prepared=prepared)
        await run_batch(connection, read, begin=False, commit=False, prepared=prepared)
        names = prepared.on(connection)
        for statement in names.values():
            statement.runs_left = 0  # due to be prepared again
        before = {statement.name for statement in names.values()}
        with pytest.raises(psycopg.errors.UniqueViolation):
            await run_batch(connection, read + again, begin=True, commit=True, prepared=prepared)
        await connection.execute("ROLLBACK")
        after = {statement.name for statement in names.values()}
        assert not before & after
        assert await _server_names(connection) == after
        (row,) = await run_batch(connection, read, begin=False, commit=False, prepared=prepared)
        assert row is not None
        assert row.id == session_id

    _run(fresh_postgres_url, body)


def test_the_thread_path_prepares_nothing(fresh_postgres_url: str) -> None:
    """psycopg prepares a statement after its fifth run and keeps that plan; the engine's
    connections (heavy units, migrations) plan each statement for the tables as they are."""
    _migrated(fresh_postgres_url)
    engine = memori_engine(fresh_postgres_url, 1)
    try:
        with engine.connect() as connection:
            lookup = text("SELECT count(*) FROM sessions WHERE id = :id")
            for _ in range(10):
                connection.execute(lookup, {"id": "x"})
            held = connection.execute(text("SELECT count(*) FROM pg_prepared_statements"))
            assert held.scalar_one() == 0
    finally:
        engine.dispose()


def test_a_batch_cut_short_closes_its_connection_and_commits_nothing(
    fresh_postgres_url: str,
) -> None:
    _migrated(fresh_postgres_url)
    session_id = new_id()

    async def body(connection: psycopg.AsyncConnection[Any]) -> None:
        async with await psycopg.AsyncConnection.connect(fresh_postgres_url) as holder:
            await holder.execute("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
            task = asyncio.create_task(
                run_batch(
                    connection, _turn(session_id), begin=True, commit=True, prepared=PreparedNames()
                )
            )
            await asyncio.sleep(0.3)  # sent, and waiting on the lock
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert connection.closed
        async with await psycopg.AsyncConnection.connect(fresh_postgres_url) as reader:
            count = await (
                await reader.execute("SELECT count(*) FROM sessions WHERE id = %s", (session_id,))
            ).fetchone()
            assert count == (0,)

    _run(fresh_postgres_url, body)


def test_a_batch_larger_than_the_socket_buffers_goes_through(fresh_postgres_url: str) -> None:
    _migrated(fresh_postgres_url)
    big = "x" * (6 * 1024 * 1024)

    async def body(connection: psycopg.AsyncConnection[Any]) -> None:
        echo = _text("SELECT length(CAST(:value AS text)) AS n, CAST(:value AS text) AS value")
        (row,) = await run_batch(
            connection,
            [Op(echo, {"value": big}, Fetch.ONE)],
            begin=False,
            commit=False,
            prepared=PreparedNames(),
        )
        assert row == (len(big), big)
        rows = await run_batch(
            connection,
            [Op(echo, {"value": big}, Fetch.ONE)] * 3,
            begin=True,
            commit=True,
            prepared=PreparedNames(),
        )
        assert [row[0] for row in rows] == [len(big)] * 3

    _run(fresh_postgres_url, body)


def test_the_pool_keeps_its_prepared_statements_through_rollbacks(fresh_postgres_url: str) -> None:
    """psycopg answers a ROLLBACK with DEALLOCATE ALL once it has prepared statements of
    its own; the pool's connections must not let it prepare any (the trailing COMMIT of a
    unit and the ROLLBACK after a violation go through psycopg)."""
    _migrated(fresh_postgres_url)

    def two_batches(session_id: str) -> Callable[[], Unit[None]]:
        def unit() -> Unit[None]:
            yield ops(*_turn(session_id))  # not committed: the driver commits after
            yield ops(*_reads(session_id)[:1])

        return unit

    def violating(session_id: str) -> Callable[[], Unit[bool]]:
        def unit() -> Unit[bool]:
            try:
                yield ops(*_turn(session_id), commit=True)
            except ConstraintViolation:
                return False
            return True

        return unit

    async def run() -> None:
        loop = PostgresLoop(fresh_postgres_url, 1)
        try:
            taken = new_id()
            for _ in range(6):
                await loop.run(Work(two_batches(new_id()), writes=True))
            await loop.run(Work(two_batches(taken), writes=True))
            assert await loop.run(Work(violating(taken), writes=True)) is False
            for _ in range(3):
                await loop.run(Work(two_batches(new_id()), writes=True))
        finally:
            await loop.close()

    asyncio.run(run())
