"""Request-id records expire: abandoned claims can be taken over, old results are purged."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from memori_server.storage.database import Database
from memori_server.storage.idempotency import ClaimState, IdempotencyStore
from memori_server.storage.migrate import migrate


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
