"""Model runs that give way to completions: what keeps indexing from delaying them.

Nice 19 tells the kernel to prefer the event loop, but on two cores a completion still met
the indexer everywhere: cores whose caches the model had filled, a scheduler that lets a
running thread finish its slice, the database's write lock and its disk syncs. So each model
run of the indexer waits until no completion is in the foreground (`Foreground`), and a run
under way when one arrives is stopped and run again after it. Past `patience` a run goes to
its end whatever comes: under constant load indexing slows down, it never stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from memori_server.foreground import Foreground
from memori_server.memory.embedder import RunStopped, StopHook
from memori_server.metrics import MEMORY_INDEX_RUNS_STOPPED

T = TypeVar("T")


class YieldingRuns:
    def __init__(self, foreground: Foreground, patience: float) -> None:
        self._foreground = foreground
        self._patience = patience
        self.stopped = 0
        """Runs stopped for a completion (and run again)."""
        self.waited = 0.0
        """Seconds spent waiting for completions, which is not indexing work."""

    def run(self, attempt: Callable[[StopHook | None], T]) -> T:
        deadline = time.monotonic() + self._patience
        while True:
            started = time.monotonic()
            left = deadline - started
            quiet = left > 0 and self._foreground.wait_quiet(left)
            self.waited += time.monotonic() - started
            if not quiet:
                return attempt(None)
            try:
                return attempt(self._foreground.interrupting)
            except RunStopped:
                self.stopped += 1
                MEMORY_INDEX_RUNS_STOPPED.inc()


__all__ = ["YieldingRuns"]
