"""Where a unit of storage work runs, and what it falls back to: the one place that decides.

- a read or a small write: the event loop, falling back to a worker thread. On SQLite the
  unit runs inline on a kept-open connection (a write falls back when the write lock is
  held elsewhere); on PostgreSQL it is pipelined on psycopg's async pool (it falls back
  when no pooled connection is free within 0.2 s).
- heavy work (many rows): a worker thread.
- fast paths off: a worker thread, always.

The event loop serves every call, so it only runs work that never waits on a lock and never
holds it long; the worker threads (as many as pooled connections) wait and work instead.
Fast paths can be turned off (`--no-database-fast-paths`) to rule them out when diagnosing.
"""

from __future__ import annotations

import enum
from typing import Any

from memori_server.storage.units import Work


class Path(enum.Enum):
    LOOP = "event loop"
    THREAD = "worker thread"


class ExecutionPolicy:
    def __init__(self, fast_paths: bool) -> None:
        self._fast_paths = fast_paths

    def paths(self, work: Work[Any]) -> tuple[Path, ...]:
        """The paths to try in order; a later one runs when an earlier one gives up
        (`FastPathUnavailable`) before sending anything."""
        if not self._fast_paths or work.heavy:
            return (Path.THREAD,)
        return (Path.LOOP, Path.THREAD)


__all__ = ["ExecutionPolicy", "Path"]
