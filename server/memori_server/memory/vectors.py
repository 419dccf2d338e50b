"""Entities' passage vectors held in memory between searches, and the dense scoring of them.

An entity's vectors are read once, then only extended: each search reads the passages with
an id above the newest held (ids only grow, so that is an index range of the few indexed
since). Deletions are not looked for on every search, which would count the entity's
passages each time (O(passages), and 1 to 3 ms at 5,000): a passage a search picks and
then finds deleted is marked dead at once (texts always come from the database, so a
deleted passage is never returned), and every VERIFY_SECONDS a search also compares the
database's (count, newest id) with what is held and reads everything again if they differ.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from memori_server.memory.embedder import DIMENSIONS, from_stored
from memori_server.metrics import MEMORY_VECTOR_CACHE_BYTES

# How often a search also checks the held vectors against the database for deletions that
# no search has come across (another process's erasure or retention, say).
VERIFY_SECONDS = 60.0
_ROW_OVERHEAD = 21  # bytes a passage holds besides its vector: id, codes, token count, flag
_MIN_CAPACITY = 64
# Passages indexed since the last search decoded on the event loop at most; more (a backfill,
# a long pause between searches) on a worker thread.
LOOP_ROWS = 256


class Codes:
    """Small integers for session and process ids, so filters compare integer arrays."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}

    def of(self, name: str) -> int:
        return self._codes.setdefault(name, len(self._codes))

    def get(self, name: str) -> int:
        """The code of `name`, or -1 when no held passage has it."""
        return self._codes.get(name, -1)

    def array(self, names: Iterable[str]) -> npt.NDArray[np.int32]:
        return np.fromiter((self.of(name) for name in names), dtype=np.int32)

    def copy(self) -> Codes:
        """The same codes, to add to without touching these (two threads adding names at
        once could give two names one code)."""
        twin = Codes()
        twin._codes = dict(self._codes)
        return twin


class _Rows:
    """Arrays with room to grow, shared by the successive versions of an entity's vectors:
    a version sees its first `count` rows, which never change, while the next version
    writes the rows after them. Written in place on the event loop only; off it, only
    rows of a copy no other version has yet."""

    def __init__(self, capacity: int) -> None:
        self.ids = np.zeros(capacity, dtype=np.int64)
        self.sessions = np.zeros(capacity, dtype=np.int32)
        self.processes = np.zeros(capacity, dtype=np.int32)
        self.tokens = np.zeros(capacity, dtype=np.int32)
        self.live = np.zeros(capacity, dtype=np.bool_)
        self.matrix = np.zeros((capacity, DIMENSIONS), dtype=np.float32)
        self.filled = 0

    @property
    def capacity(self) -> int:
        return len(self.ids)

    def write(self, start: int, rows: Sequence[Any], codes: Codes) -> None:
        end = start + len(rows)
        self.ids[start:end] = [row.id for row in rows]
        self.sessions[start:end] = codes.array(row.session_id for row in rows)
        self.processes[start:end] = codes.array(row.process_id for row in rows)
        self.tokens[start:end] = [row.token_count for row in rows]
        self.live[start:end] = True
        self.matrix[start:end] = from_stored([bytes(row.embedding) for row in rows])
        self.filled = end

    def grown(self, count: int, capacity: int) -> _Rows:
        """A copy of the first `count` rows with room for `capacity`."""
        bigger = _Rows(capacity)
        for name in ("ids", "sessions", "processes", "tokens", "live", "matrix"):
            getattr(bigger, name)[:count] = getattr(self, name)[:count]
        bigger.filled = count
        return bigger


@dataclass(frozen=True, slots=True)
class EntityVectors:
    """One entity's passages as held, in id order."""

    rows: _Rows
    count: int
    codes: Codes
    verified: float
    """time.monotonic() of the last check against the database's count."""

    @property
    def ids(self) -> npt.NDArray[np.int64]:
        return self.rows.ids[: self.count]

    @property
    def sessions(self) -> npt.NDArray[np.int32]:
        return self.rows.sessions[: self.count]

    @property
    def processes(self) -> npt.NDArray[np.int32]:
        return self.rows.processes[: self.count]

    @property
    def tokens(self) -> npt.NDArray[np.int32]:
        return self.rows.tokens[: self.count]

    @property
    def live(self) -> npt.NDArray[np.bool_]:
        """False for a passage found deleted since it was read."""
        return self.rows.live[: self.count]

    @property
    def matrix(self) -> npt.NDArray[np.float32]:
        return self.rows.matrix[: self.count]

    @property
    def last_id(self) -> int:
        return int(self.rows.ids[self.count - 1]) if self.count else 0

    @property
    def live_count(self) -> int:
        return int(self.live.sum())

    @property
    def nbytes(self) -> int:
        return int(self.rows.capacity * (DIMENSIONS * 4 + _ROW_OVERHEAD))

    def positions(self, ids: Iterable[int]) -> npt.NDArray[np.intp]:
        """Where those of `ids` that are held are."""
        wanted = np.fromiter(ids, dtype=np.int64)
        if not len(wanted) or not self.count:
            return np.zeros(0, dtype=np.intp)
        # Passage ids are held in ascending order: their positions by binary search.
        positions: npt.NDArray[np.intp] = np.minimum(
            np.searchsorted(self.ids, wanted), self.count - 1
        )
        held: npt.NDArray[np.intp] = positions[self.ids[positions] == wanted]
        return held

    def token_counts(self, ids: Iterable[int]) -> dict[int, int]:
        """The token counts of those of `ids` held."""
        positions = self.positions(ids)
        return dict(zip(self.ids[positions].tolist(), self.tokens[positions].tolist(), strict=True))

    def extended(self, rows: Sequence[Any], in_place: bool = True) -> EntityVectors:
        """These and the passages indexed since (`rows`, by id, all newer than `last_id`):
        written after these in place when nothing else was, else into a copy twice as big
        (so extending costs the new rows, not the entity's). Off the event loop, always
        into a copy (`in_place` False): the loop may be extending the same rows."""
        if not rows:
            return self
        end = self.count + len(rows)
        held, codes = self.rows, self.codes
        if not in_place or held.filled != self.count or held.capacity < end:
            held = held.grown(self.count, max(2 * end, _MIN_CAPACITY))
        if not in_place:
            codes = codes.copy()
        held.write(self.count, rows, codes)
        return EntityVectors(held, end, codes, self.verified)

    def mark_deleted(self, ids: Iterable[int]) -> None:
        """The passages of `ids` are deleted: never a candidate again (for every version:
        they are gone from the database for all of them)."""
        self.rows.live[self.positions(ids)] = False

    def matches(self, version: tuple[int, int]) -> bool:
        """Whether the database's (count, newest id) is what is held alive."""
        return version == (self.live_count, self.last_id)


def read(rows: Sequence[Any]) -> EntityVectors:
    """Held vectors from stored rows (id, session_id, process_id, token_count, embedding),
    with room to grow."""
    codes = Codes()
    held = _Rows(max(len(rows) + len(rows) // 4, _MIN_CAPACITY))
    held.write(0, rows, codes)
    return EntityVectors(held, len(rows), codes, time.monotonic())


def nearest(
    held: EntityVectors,
    vector: npt.NDArray[np.float32],
    process_id: str | None,
    exclude_session_id: str,
    limit: int,
    also: Iterable[int] = (),
) -> dict[int, float]:
    """Cosine similarities: of the `limit` nearest live passages that the filters allow, and
    of the passages `also` names (the full-text matches), which fusion needs."""
    if not len(held.ids):
        return {}
    # einsum, not `@`: BLAS would split this over its own threads, which wait for cores the
    # query's embedding and the database hold (measured in a server: +3 to 4 ms a search).
    scores = np.einsum("ij,j->i", held.matrix, vector)
    allowed = held.live & (held.sessions != held.codes.get(exclude_session_id))
    if process_id is not None:
        allowed &= held.processes == held.codes.get(process_id)
    scores = np.where(allowed, scores, -np.inf)
    count = min(limit, int(allowed.sum()))
    if count == 0:
        return {}
    top = np.argpartition(-scores, count - 1)[:count]
    found = {int(held.ids[index]): float(scores[index]) for index in top}
    for position in held.positions(also):
        if allowed[position]:
            found.setdefault(int(held.ids[position]), float(scores[position]))
    return found


class VectorCache:
    """Entities' vectors, at most `max_bytes` in all, least recently used out first."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._held: OrderedDict[tuple[str, str], EntityVectors] = OrderedDict()

    def get(self, key: tuple[str, str]) -> EntityVectors | None:
        held = self._held.get(key)
        if held is not None:
            self._held.move_to_end(key)
        return held

    def put(self, key: tuple[str, str], vectors: EntityVectors) -> None:
        self.drop(key)
        if vectors.nbytes > self.max_bytes:
            return
        self._held[key] = vectors
        self.bytes += vectors.nbytes
        while self.bytes > self.max_bytes:
            _, evicted = self._held.popitem(last=False)
            self.bytes -= evicted.nbytes
        MEMORY_VECTOR_CACHE_BYTES.set(self.bytes)

    def drop(self, key: tuple[str, str]) -> None:
        old = self._held.pop(key, None)
        if old is not None:
            self.bytes -= old.nbytes
            MEMORY_VECTOR_CACHE_BYTES.set(self.bytes)

    def forget_entity(self, tenant_id: str, entity_id: str) -> None:
        self.drop((tenant_id, entity_id))

    def mark_deleted(self, key: tuple[str, str], ids: Iterable[int]) -> None:
        """Passages of the entity found deleted: never a candidate again."""
        held = self._held.get(key)
        if held is not None:
            held.mark_deleted(ids)


__all__ = [
    "LOOP_ROWS",
    "VERIFY_SECONDS",
    "Codes",
    "EntityVectors",
    "VectorCache",
    "nearest",
    "read",
]
