"""Background upkeep of the database: expired request ids, idle sessions past the retention,
and erasure records no call can need any more. Small transactions, one after another, so
none holds SQLite's write lock for long; a failed round only waits for the next."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from memori_server.errors import StorageUnavailable
from memori_server.metrics import (
    ERASURES_FORGOTTEN,
    MESSAGES_EXPIRED,
    REQUESTS_PURGED,
    SESSIONS_EXPIRED,
)
from memori_server.storage.history_cache import HistoryCache
from memori_server.storage.idempotency import IdempotencyStore
from memori_server.storage.retention import RetentionStore

log = logging.getLogger(__name__)
IDLE_BATCH = 100
ERASURE_MEMORY = timedelta(days=1)  # far longer than any call may run


@dataclass(frozen=True, slots=True)
class Round:
    """What one round deleted."""

    requests: int = 0
    sessions: int = 0
    messages: int = 0
    erasures: int = 0


class Housekeeping:
    def __init__(
        self,
        requests: IdempotencyStore,
        retention: RetentionStore,
        session_retention: float | None,
        interval: float,
        clock: Callable[[], datetime],
        history_cache: HistoryCache | None = None,
    ) -> None:
        self._history_cache = history_cache
        self._requests = requests
        self._retention = retention
        self._session_retention = session_retention
        self._interval = interval
        self._clock = clock
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        """Rounds until `stop()`; ends on its own, so shutdown never hinges on cancellation."""
        while not self._stopped.is_set():
            try:
                done = await self.run_once()
            except StorageUnavailable as error:
                log.warning("housekeeping waits for the database", extra={"error": error.message})
            else:
                if done != Round():
                    log.info("housekeeping", extra=vars_of(done))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()

    async def run_once(self) -> Round:
        now = self._clock()
        if self._history_cache is not None:
            self._history_cache.sweep()
        requests = await self._requests.purge_expired()
        REQUESTS_PURGED.inc(requests)
        sessions = messages = 0
        if self._session_retention is not None:
            sessions, messages = await self._expire_sessions(
                now - timedelta(seconds=self._session_retention)
            )
        erasures = await self._retention.forget_erasures(now - ERASURE_MEMORY)
        ERASURES_FORGOTTEN.inc(erasures)
        return Round(requests, sessions, messages, erasures)

    async def _expire_sessions(self, cutoff: datetime) -> tuple[int, int]:
        sessions = messages = 0
        while not self._stopped.is_set():
            idle = await self._retention.idle_sessions(cutoff, IDLE_BATCH)
            for tenant_id, session_id in idle:
                deleted = await self._retention.delete_idle(tenant_id, session_id, cutoff)
                if deleted is not None:
                    sessions += 1
                    messages += deleted
                    SESSIONS_EXPIRED.inc()
                    MESSAGES_EXPIRED.inc(deleted)
            if len(idle) < IDLE_BATCH:
                break
        return sessions, messages


def vars_of(done: Round) -> dict[str, int]:
    return {
        "requests_purged": done.requests,
        "sessions_expired": done.sessions,
        "messages_expired": done.messages,
        "erasures_forgotten": done.erasures,
    }


__all__ = ["Housekeeping", "Round"]
