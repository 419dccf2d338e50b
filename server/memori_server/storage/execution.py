"""Where a unit of storage work runs, and what it falls back to: the one place that decides.

| unit | SQLite | PostgreSQL |
| --- | --- | --- |
| small read | loop, else a pool thread | loop, else a pool thread |
| small write | loop (a synced commit on a thread), else the writer | loop, else a pool thread |
| slow read (few rows, a slow statement) | a pool thread | loop, else a pool thread |
| heavy read (many rows) | a pool thread | a pool thread |
| heavy write | the writer | a pool thread |
| fast paths off | a pool thread (writes: the writer) | a pool thread |

(loop: the event loop; the writer: SQLite's one writer thread.)

- The event loop serves every call, so it only runs work that never waits on a lock and
  never takes long: on SQLite a unit inline on a kept-open connection (WAL readers never
  wait; the write connection's busy timeout is zero, so a held write lock sends the unit
  on), on PostgreSQL one round trip per batch on psycopg's async pool (no pooled connection
  free within 0.2 s sends it on).
- SQLite has one writer at a time. A small write runs its statements on the loop (the
  write lock is its connection's: nothing waits) and, with synchronous=full (the default),
  its commit on a thread, because the loop must not wait for the disk
  (`sqlite_loop_commits`). Heavy writes, and writes that found the write lock held, go to
  one writer thread, where they queue in order instead of meeting in SQLite's busy
  handler, which sleeps in steps of milliseconds, and commit in groups (`sqlite_writer`).
- Pool threads (as many as pooled connections) take the rest.

`--no-database-fast-paths` keeps every unit off the loop, to rule the fast paths out.
"""

from __future__ import annotations

import enum
from typing import Any

from memori_server.storage.units import Work


class Path(enum.Enum):
    LOOP = "event loop"
    WRITER = "SQLite's writer thread"
    THREAD = "a pool thread"


class ExecutionPolicy:
    def __init__(self, dialect: str, fast_paths: bool) -> None:
        self._sqlite = dialect == "sqlite"
        self._fast_paths = fast_paths

    def paths(self, work: Work[Any]) -> tuple[Path, ...]:
        """The paths to try in order; a later one runs when an earlier one gives up
        (`FastPathUnavailable`) before sending anything."""
        off_loop = Path.WRITER if self._sqlite and work.writes else Path.THREAD
        on_loop = self._fast_paths and not work.heavy and not (self._sqlite and work.slow)
        return (Path.LOOP, off_loop) if on_loop else (off_loop,)


__all__ = ["ExecutionPolicy", "Path"]
