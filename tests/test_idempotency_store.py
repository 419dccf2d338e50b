"""Request-id records expire: abandoned claims can be taken over, old results are purged."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from memori_server.storage.compiled import CompiledStatement
from memori_server.storage.database import Database
from memori_server.storage.idempotency import ClaimState, IdempotencyStore
from memori_server.storage.migrate import migrate
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


def _recording(
    run: Callable[[Work[T]], Awaitable[T]], sent: list[list[CompiledStatement]]
) -> Callable[[Work[T]], Awaitable[T]]:
    """`Database.run` that notes each batch's statements before the driver runs it."""

    def noted(start: Callable[[], Unit[T]]) -> Unit[T]:
        unit = start()
        try:
            batch = next(unit)
            while True:
                sent.append([op.statement for op in batch.ops])
                batch = unit.send((yield batch))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def recording(work: Work[T]) -> T:
        return await run(dataclasses.replace(work, start=lambda: noted(work.start)))

    return recording


async def _sync_level_after_claims(database_url: str) -> tuple[list[str], str]:
    """The claim's own batch on PostgreSQL, ending with the setting it commits under, and
    the setting a write after many claims runs under on the same pool."""
    database = Database(database_url, pool_size=1)  # every unit on the one connection
    setting = CompiledStatement(
        text("SELECT current_setting('synchronous_commit') AS value"), database.engine.dialect
    )
    statements = database.statements
    try:
        await migrate(database)
        store = IdempotencyStore(database, Clock())
        sent: list[list[CompiledStatement]] = []
        database.run = _recording(database.run, sent)  # type: ignore[method-assign,assignment]
        for n in range(5):
            claim = await store.claim("t", f"req-{n}", "complete", "fp", lease_seconds=30)
            assert claim.state is ClaimState.CLAIMED
        assert sent == [[statements.commit_without_flush, statements.claim_new]] * 5

        def claim_batch() -> Unit[list[str]]:
            *_, value = yield ops(
                Op(statements.commit_without_flush, {}), Op(setting, {}, Fetch.ONE), commit=True
            )
            return [value[0]]

        def write() -> Unit[str]:
            (value,) = yield ops(Op(setting, {}, Fetch.ONE), commit=True)
            return str(value[0])

        during = await database.run(Work(claim_batch, writes=True))
        return during, await database.run(Work(write, writes=True))
    finally:
        await database.close()


def test_on_postgresql_a_claim_commits_without_a_flush_and_only_the_claim(
    fresh_postgres_url: str,
) -> None:
    """The claim's transaction does not wait for the WAL flush; the setting is the
    transaction's own, so the turns that follow on the same connection stay synced."""
    during, after = asyncio.run(_sync_level_after_claims(fresh_postgres_url))
    assert during == ["off"]
    assert after == "on"
