"""The stores on one database without a server, for tests of the storage layer itself."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from memori_server.storage.database import Database
from memori_server.storage.history_cache import HistoryCache
from memori_server.storage.idempotency import IdempotencyStore
from memori_server.storage.migrate import migrate
from memori_server.storage.session_store import SessionStore, utc_now
from memori_server.storage.turn_store import TurnStore

T = TypeVar("T")


class Stores:
    """The three stores on one database, with a loop of their own to run them on."""

    def __init__(
        self, database_url: str, fast_paths: bool, *, sqlite_synchronous: str = "full"
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.database = Database(
            database_url, 4, fast_paths=fast_paths, sqlite_synchronous=sqlite_synchronous
        )
        self.run(migrate(self.database))
        # As a server has it: the turn store holds windows, deleting a session drops its own.
        self.history_cache = HistoryCache(64 * 1024 * 1024, 600.0)
        self.turns = TurnStore(self.database, cache=self.history_cache)
        self.sessions = SessionStore(self.database, cache=self.history_cache)
        self.requests = IdempotencyStore(self.database, utc_now)

    def run(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(work)

    def close(self) -> None:
        self.run(self.database.close())
        self.loop.close()
