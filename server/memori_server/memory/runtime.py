"""Long-term memory as one server process runs it: model, store, search, recall, indexer."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

from memori_server.config import Settings
from memori_server.foreground import Foreground
from memori_server.memory.embedder import Embedder
from memori_server.memory.indexer import Indexer
from memori_server.memory.recall import Recall
from memori_server.memory.search import MemorySearch, SearchMode
from memori_server.storage.database import Database
from memori_server.storage.memory_store import MemoryStore

log = logging.getLogger(__name__)


class MemoryRuntime:
    def __init__(
        self,
        database: Database,
        embedder: Embedder,
        settings: Settings,
        foreground: Foreground | None = None,
    ) -> None:
        """`foreground`: the completions the indexer gives way to."""
        self.store = MemoryStore(database)
        self.search = MemorySearch(
            self.store,
            embedder,
            mode=SearchMode(settings.memory_search_mode),
            cache_bytes=settings.memory_cache_bytes,
        )
        self.recall = Recall(self.search, settings.recall_default)
        self.indexer = Indexer(
            self.store,
            functools.partial(Embedder, settings.memory_index_threads),
            duty=settings.memory_index_duty,
            interval=settings.memory_index_interval,
            foreground=foreground,
        )
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, database: Database, settings: Settings, foreground: Foreground | None = None
    ) -> MemoryRuntime:
        """Load the model (on a thread: it takes a moment) and make the parts."""
        embedder = await asyncio.to_thread(Embedder, 1)
        log.info(
            "long-term memory on",
            extra={
                "model_bytes": embedder.memory_bytes,
                "search": settings.memory_search_mode,
                "recall_default": settings.recall_default,
            },
        )
        return cls(database, embedder, settings, foreground)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.indexer.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.indexer.close()
        self.search.close()


__all__ = ["MemoryRuntime"]
