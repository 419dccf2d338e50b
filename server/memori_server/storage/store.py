"""What every store of the storage layer is built on: the database with its compiled
statements, the clock its units read, and the history windows this process holds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from memori_server.storage.database import Database
from memori_server.storage.history_cache import HistoryCache


def utc_now() -> datetime:
    return datetime.now(UTC)


class Store:
    def __init__(
        self,
        database: Database,
        clock: Callable[[], datetime] = utc_now,
        cache: HistoryCache | None = None,
    ) -> None:
        self._db = database
        self._sql = database.statements
        self._clock = clock
        # None: no windows are held (none given, or --history-cache-bytes 0).
        self._cache = cache if cache is not None and cache.enabled else None


__all__ = ["Store", "utc_now"]
