"""Background indexing: stored messages become passages with embeddings, batch by batch.

It never delays a completion: it runs as one task beside the server and embeds on a thread
of its own at the lowest scheduling priority (nice 19), so the kernel gives the cores to
the event loop and to other processes first and indexing takes what is idle. Each of its
steps (a database read or write, a model run) also waits until no completion is in the
foreground, and a model run is stopped when one arrives (`yielding`); `duty` can cap it
further (it then rests after each batch in proportion to the time the batch took). Its
progress is the sessions' watermark in the database, so a restart resumes where it stopped,
and several server processes on one PostgreSQL share the work (a session two of them index
at once is stored by one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from memori_server.foreground import Foreground
from memori_server.memory.embedder import Embedder, to_stored
from memori_server.memory.passages import Passage, continues, line_of, passages_of
from memori_server.memory.yielding import YieldingRuns
from memori_server.metrics import (
    MEMORY_INDEX_SECONDS,
    MEMORY_INDEXED_MESSAGES,
    MEMORY_INDEXED_PASSAGES,
)
from memori_server.storage.memory_store import IndexInput, MemoryStore, NewPassage
from memori_server.tokens import bundled_encoding, count_message

log = logging.getLogger(__name__)
SESSIONS_PER_ROUND = 16
MESSAGES_PER_SESSION = 256
# How long one step waits for the completions in the foreground before it runs anyway.
PATIENCE = 0.25


def _lowest_priority() -> None:
    """Make the calling thread the kernel's last choice for a core (Linux schedules threads
    one by one; elsewhere this does nothing)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


class Indexer:
    def __init__(
        self,
        store: MemoryStore,
        make_embedder: Callable[[], Embedder],
        *,
        duty: float,
        interval: float,
        foreground: Foreground | None = None,
    ) -> None:
        self._store = store
        self._foreground = foreground or Foreground()
        self._runs = YieldingRuns(self._foreground, PATIENCE)
        # The indexer's own model session, made on its thread at first use: the threads
        # onnxruntime starts for it then inherit that thread's low priority.
        self._make_embedder = make_embedder
        self._embedder: Embedder | None = None
        self._duty = duty
        self._interval = interval
        self._wake = asyncio.Event()
        self._thread = ThreadPoolExecutor(
            1, thread_name_prefix="memory-index", initializer=_lowest_priority
        )
        self._encoding = bundled_encoding()

    def poke(self) -> None:
        """Something was stored: look soon rather than at the next interval."""
        self._wake.set()

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)

    async def run(self) -> None:
        """Index until cancelled; a failing round is logged and tried again later."""
        while True:
            try:
                busy = await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("memory indexing failed; retrying")
                busy = False
            if not busy:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._interval)

    async def round(self) -> bool:
        """Index one batch of sessions; whether there was anything to index."""
        await self._foreground.quiet(PATIENCE)
        pending = await self._store.pending_sessions(SESSIONS_PER_ROUND)
        if not pending:
            return False
        random.shuffle(pending)  # processes sharing a database start at different sessions
        for session in pending:
            await self._foreground.quiet(PATIENCE)
            source = await self._store.index_input(session, MESSAGES_PER_SESSION, continues)
            started, waited = time.monotonic(), self._runs.waited
            passages = await asyncio.get_running_loop().run_in_executor(
                self._thread, self._passages, source
            )
            new = [int(row.seq) for row in source.rows if int(row.seq) > session.indexed_seq]
            # No rows after the watermark (none can be read): nothing is left to index.
            through = max(new) if new else session.message_count
            # The batch's own time: its waits for completions are neither work nor duty.
            busy = time.monotonic() - started - (self._runs.waited - waited)
            MEMORY_INDEX_SECONDS.observe(busy)
            await self._foreground.quiet(PATIENCE)
            if await self._store.write_index(source, through, passages):
                MEMORY_INDEXED_MESSAGES.inc(through - session.indexed_seq)
                MEMORY_INDEXED_PASSAGES.inc(len(passages))
            await self._rest(busy)
        return True

    async def _rest(self, busy: float) -> None:
        """Pause so that embedding takes at most `duty` of the time."""
        if self._duty < 1.0 and busy > 0:
            await asyncio.sleep(busy * (1.0 - self._duty) / self._duty)

    def _passages(self, source: IndexInput) -> list[NewPassage]:
        """Build and embed the passages of `source` (on the indexing thread)."""
        lines = [line for line in map(line_of, source.rows) if line is not None]
        built: Sequence[Passage] = passages_of(lines)
        if not built:
            return []
        if self._embedder is None:
            self._embedder = self._make_embedder()
        vectors = to_stored(self._embedder.embed([p.text for p in built], runs=self._runs))
        return [
            NewPassage(
                seq_first=passage.seq_first,
                seq_last=passage.seq_last,
                text=passage.text,
                token_count=count_message(self._encoding, {"content": passage.text}),
                create_time=passage.create_time,
                embedding=vector,
            )
            for passage, vector in zip(built, vectors, strict=True)
        ]


__all__ = ["Indexer"]
