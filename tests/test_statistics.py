"""A server analyzes the PostgreSQL tables that have no statistics (a restore, a bulk import)
before it serves, so a session is read through its primary key from the first call."""

from __future__ import annotations

import asyncio
import time

import psycopg
from memori_server.app import open_database
from memori_server.domain import Attribution
from memori_server.storage.database import Database
from memori_server.storage.migrate import migrate
from memori_server.storage.records import NewMessage
from memori_server.storage.session_store import SessionStore
from memori_server.storage.statistics import Analyzed, analyze_never_analyzed
from memori_server.storage.tables import metadata

from tests.factories import new_id

TENANT = "default"


def _never_analyzed(url: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NULL "
            "AND last_autoanalyze IS NULL"
        ).fetchall()
    return {name for (name,) in rows} & set(metadata.tables)


def _plan(url: str, session_id: str) -> str:
    database = Database(url, 1)
    sql = database.statements.load_by_id.sql
    asyncio.run(database.close())
    parameters = {"tenant_id": TENANT, "session_id": session_id, "since": 0, "window": 300}
    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(f"EXPLAIN {sql}", parameters).fetchall()
    return "\n".join(line for (line,) in rows)


async def _fill(url: str) -> str:
    """A schema without autovacuum, filled in bulk as an import would; one session's id."""
    database = Database(url, 2)
    try:
        await migrate(database)
        with psycopg.connect(url, autocommit=True) as connection:
            for table in metadata.tables:
                connection.execute(f'ALTER TABLE "{table}" SET (autovacuum_enabled = false)')
        store = SessionStore(database)
        ids = []
        for number in range(300):
            session = await store.reset(TENANT, Attribution(f"entity-{number}", "agent"))
            history = [
                NewMessage("user", f"message {n} {new_id()}", token_count=9) for n in range(6)
            ]
            await store.append_messages(TENANT, session.id, history)
            ids.append(session.id)
        return ids[150]
    finally:
        await database.close()


def test_tables_without_statistics_are_analyzed_before_serving(fresh_postgres_url: str) -> None:
    session_id = asyncio.run(_fill(fresh_postgres_url))
    assert {"sessions", "messages", "current_sessions"} <= _never_analyzed(fresh_postgres_url)

    database = asyncio.run(open_database(fresh_postgres_url, 2, migrate_schema=True))
    asyncio.run(database.close())

    assert _never_analyzed(fresh_postgres_url) == set()
    plan = _plan(fresh_postgres_url, session_id)
    assert "Index Scan using pk_sessions on sessions" in plan, plan
    assert "pk_current_sessions" in plan, plan


def test_analyzed_tables_are_left_to_autovacuum(fresh_postgres_url: str) -> None:
    async def twice() -> tuple[Analyzed, Analyzed]:
        database = Database(fresh_postgres_url, 2)
        try:
            await migrate(database)
            return await analyze_never_analyzed(database), await analyze_never_analyzed(database)
        finally:
            await database.close()

    first, second = asyncio.run(twice())
    assert set(first.tables) == set(metadata.tables)
    assert second.tables == second.skipped == []


def test_sqlite_is_not_analyzed(tmp_path: object) -> None:
    async def run() -> Analyzed:
        database = Database(f"sqlite:///{tmp_path}/statistics.db", 1)
        try:
            await migrate(database)
            return await analyze_never_analyzed(database)
        finally:
            await database.close()

    assert asyncio.run(run()) == Analyzed([], [])


def test_a_held_lock_does_not_hold_up_the_start(fresh_postgres_url: str) -> None:
    """A VACUUM or an index build on a table makes ANALYZE wait: the start gives up after
    the lock timeout and serves without statistics."""
    asyncio.run(_fill(fresh_postgres_url))
    with psycopg.connect(fresh_postgres_url) as holder:
        holder.execute("LOCK TABLE messages IN SHARE UPDATE EXCLUSIVE MODE")
        started = time.monotonic()
        database = asyncio.run(open_database(fresh_postgres_url, 2, migrate_schema=False))
        waited = time.monotonic() - started
        asyncio.run(database.close())
        holder.rollback()
    assert waited < 10
    assert _never_analyzed(fresh_postgres_url) == {"messages"}  # those after it too
