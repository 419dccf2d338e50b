"""Request-id records expire: abandoned claims can be taken over, old results are purged."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import TypeVar

from memori_server.storage.compiled import CompiledStatement
from memori_server.storage.database import Database
from memori_server.storage.idempotency import ClaimState, IdempotencyStore
from memori_server.storage.migrate import migrate
from memori_server.storage.tables import OWNER_LENGTH
from memori_server.storage.units import Fetch, Op, Unit, Work, ops
from sqlalchemy import text

T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def _scenario(database_url: str) -> None:
    database = Database(database_url)
    try:
        await migrate(database)
        clock = Clock()
        store = IdempotencyStore(database, clock)
        first = await store.claim("t", "req-1", "complete", "fp", lease_seconds=30)
        assert first.state is ClaimState.CLAIMED
        retry = await store.claim("t", "req-1", "complete", "fp", lease_seconds=30)
        assert retry.state is ClaimState.IN_FLIGHT
        assert await store.purge_expired() == 0
        clock.now += timedelta(seconds=31)  # the first call's server died: its lease ran out
        taken_over = await store.claim("t", "req-1", "complete", "fp", lease_seconds=30)
        assert taken_over.state is ClaimState.CLAIMED
        await store.claim("t", "req-2", "complete", "fp", lease_seconds=30)
        clock.now += timedelta(seconds=31)
        assert await store.purge_expired() == 2
        fresh = await store.claim("t", "req-1", "complete", "other", lease_seconds=30)
        assert fresh.state is ClaimState.CLAIMED  # a purged id is free for a new request
    finally:
        await database.close()


def test_expired_claims_are_taken_over_and_purged(fresh_database_url: str) -> None:
    asyncio.run(_scenario(fresh_database_url))


async def _claims_without_the_fast_path(database_url: str) -> None:
    database = Database(database_url, fast_paths=False)  # every unit on the thread path
    try:
        await migrate(database)
        store = IdempotencyStore(database, Clock())
        first = await store.claim("t", "req-1", "complete", "fp", lease_seconds=30)
        assert first.state is ClaimState.CLAIMED
        again = await store.claim("t", "req-1", "complete", "fp", lease_seconds=30)
        assert again.state is ClaimState.IN_FLIGHT
        await store.release("t", "req-1", first.owner or "")  # the first call failed
        retry = await store.claim("t", "req-1", "complete", "fp", lease_seconds=30)
        assert retry.state is ClaimState.CLAIMED
    finally:
        await database.close()


def test_the_thread_path_claims_new_ids_on_its_own(fresh_database_url: str) -> None:
    """The event-loop fast path may be unavailable; then the thread path must still tell a
    fresh claim from an existing record."""
    asyncio.run(_claims_without_the_fast_path(fresh_database_url))


async def _sync_levels(database_url: str, fast_paths: bool) -> list[tuple[bool, str]]:
    """Per claim made, whether its unit was durable; then the setting a write that need not
    be durable commits under, and a durable write's after it on the same connection."""
    database = Database(database_url, pool_size=1, fast_paths=fast_paths)
    setting = CompiledStatement(
        text("SELECT current_setting('synchronous_commit')"), database.engine.dialect
    )
    seen: list[tuple[bool, str]] = []
    try:
        await migrate(database)
        store = IdempotencyStore(database, Clock())
        run = database.run

        async def noting(work: Work[T]) -> T:
            seen.append((work.durable, "claim"))
            return await run(work)

        database.run = noting  # type: ignore[method-assign]
        for n in range(3):
            request_id = f"req-{fast_paths}-{n}"
            claim = await store.claim("t", request_id, "complete", "fp", lease_seconds=30)
            assert claim.state is ClaimState.CLAIMED
        database.run = run  # type: ignore[method-assign]

        def read_setting() -> Unit[str]:
            (row,) = yield ops(Op(setting, {}, Fetch.ONE), commit=True)
            return str(row[0])

        for durable in (False, True, False, True):
            value = await database.run(Work(read_setting, writes=True, durable=durable))
            seen.append((durable, value))
        return seen
    finally:
        await database.close()


def test_on_postgresql_a_claim_commits_without_a_flush_and_only_the_claim(
    fresh_postgres_url: str,
) -> None:
    """A claim need not be durable: on PostgreSQL its transaction commits with
    synchronous_commit off, on the event loop's connections and on the thread path alike,
    and the setting is the transaction's own: a durable write after it on the same
    connection waits for the flush."""
    for fast_paths in (True, False):
        seen = asyncio.run(_sync_levels(fresh_postgres_url, fast_paths))
        assert seen == [
            *[(False, "claim")] * 3,
            (False, "off"),
            (True, "on"),
            (False, "off"),
            (True, "on"),
        ], fast_paths


def test_owner_tokens_are_unique_fit_the_column_and_differ_in_a_forked_child() -> None:
    # Making a claim's unit touches no database: a stand-in with no statements will do.
    no_database = SimpleNamespace(statements=None)
    store = IdempotencyStore(no_database, lambda: datetime.now(UTC))  # type: ignore[arg-type]

    def owners(count: int) -> list[str]:
        return [store.claiming("t", "r", "complete", "f", 1.0).owner for _ in range(count)]

    here = owners(1000)
    assert len(set(here)) == 1000
    assert {len(owner) for owner in here} == {OWNER_LENGTH}
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # the child writes its tokens and leaves at once
        os.write(writing, "\n".join(owners(1000)).encode())
        os._exit(0)
    os.close(writing)
    with os.fdopen(reading) as pipe:
        there = pipe.read().split("\n")
    os.waitpid(child, 0)
    assert len(there) == 1000
    assert not set(here) & set(there)
    assert {owner[:16] for owner in there} != {owner[:16] for owner in here}
