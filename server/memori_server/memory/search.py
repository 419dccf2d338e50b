"""Hybrid search over an entity's passages: full-text rank and embedding similarity, fused.

The entity's vectors are held in memory between searches (bounded, least recently used
first out) and read again only when its passages changed, which one small statement tells.
"""

from __future__ import annotations

import asyncio
import enum
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from memori_server.memory.embedder import Embedder, from_stored
from memori_server.memory.ranking import (
    LEXICAL_HALF_STRENGTH,
    combined,
    fts5_match,
    query_words,
    ranked_by,
    saturated,
    tsquery,
    within,
)
from memori_server.metrics import MEMORY_SEARCH_SECONDS, MEMORY_VECTOR_CACHE_BYTES
from memori_server.storage.memory_statements import MAX_FETCH
from memori_server.storage.memory_store import MemoryStore, scope_token
from memori_server.validation import Violations

# Candidates each ranking contributes to the fusion, at least.
MIN_CANDIDATES = 50
MAX_PAGE_SIZE = 100
MAX_QUERY_CHARS = 4096


def search_bounds(
    page_size: int,
    token_budget: int,
    *,
    default_page_size: int,
    default_budget: int,
    field: str,
    violations: Violations,
) -> tuple[int, int]:
    """(page size, token budget) a search request or a call's recall options ask for: 0 is
    the default (a budget of 0 with no default: no cap), at most MAX_PAGE_SIZE results."""
    if page_size < 0:
        violations.add(f"{field}page_size", f"{page_size} is negative; use 0 for the default")
    if token_budget < 0:
        meaning = "the default" if default_budget else "no cap"
        violations.add(f"{field}token_budget", f"{token_budget} is negative; use 0 for {meaning}")
    return min(page_size or default_page_size, MAX_PAGE_SIZE), token_budget or default_budget


class SearchMode(enum.StrEnum):
    HYBRID = "hybrid"
    LEXICAL = "lexical"
    DENSE = "dense"


@dataclass(frozen=True, slots=True)
class FoundMemory:
    session_id: str
    sequences: list[int]
    text: str
    score: float
    token_count: int
    create_time: datetime


@dataclass(frozen=True, slots=True)
class _EntityVectors:
    version: tuple[int, int]
    ids: npt.NDArray[np.int64]
    sessions: npt.NDArray[np.object_]
    processes: npt.NDArray[np.object_]
    matrix: npt.NDArray[np.float32]

    @property
    def nbytes(self) -> int:
        return int(self.matrix.nbytes + self.ids.nbytes + 64 * len(self.ids))


class VectorCache:
    """Entities' vectors, at most `max_bytes` in all."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._held: OrderedDict[tuple[str, str], _EntityVectors] = OrderedDict()

    def get(self, key: tuple[str, str], version: tuple[int, int]) -> _EntityVectors | None:
        held = self._held.get(key)
        if held is None or held.version != version:
            return None
        self._held.move_to_end(key)
        return held

    def peek(self, key: tuple[str, str]) -> _EntityVectors | None:
        """What is held for `key`, whatever its version."""
        return self._held.get(key)

    def put(self, key: tuple[str, str], vectors: _EntityVectors) -> None:
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


def _extended(
    held: _EntityVectors, version: tuple[int, int], rows: Sequence[Any]
) -> _EntityVectors:
    """`held` with the rows indexed after it appended."""
    more = _entity_vectors(version, rows)
    return _EntityVectors(
        version=version,
        ids=np.concatenate([held.ids, more.ids]),
        sessions=np.concatenate([held.sessions, more.sessions]),
        processes=np.concatenate([held.processes, more.processes]),
        matrix=np.concatenate([held.matrix, more.matrix]),
    )


def _entity_vectors(version: tuple[int, int], rows: Sequence[Any]) -> _EntityVectors:
    return _EntityVectors(
        version=version,
        ids=np.array([row.id for row in rows], dtype=np.int64),
        sessions=np.array([row.session_id for row in rows], dtype=object),
        processes=np.array([row.process_id for row in rows], dtype=object),
        matrix=from_stored([bytes(row.embedding) for row in rows]),
    )


async def _nothing() -> dict[int, float]:
    return {}


async def _no_vectors() -> _EntityVectors | None:
    return None


def nearest(
    held: _EntityVectors,
    vector: npt.NDArray[np.float32],
    process_id: str | None,
    exclude_session_id: str,
    limit: int,
    also: Iterable[int] = (),
) -> dict[int, float]:
    """Cosine similarities: of the `limit` nearest passages that the filters allow, and of
    the passages `also` names (the full-text matches), which fusion needs."""
    if not len(held.ids):
        return {}
    scores = held.matrix @ vector
    allowed = held.sessions != exclude_session_id
    if process_id is not None:
        allowed &= held.processes == process_id
    scores = np.where(allowed, scores, -np.inf)
    count = min(limit, int(allowed.sum()))
    if count == 0:
        return {}
    top = np.argpartition(-scores, count - 1)[:count]
    found = {int(held.ids[index]): float(scores[index]) for index in top}
    wanted = np.fromiter(also, dtype=np.int64)
    if len(wanted):
        # Passage ids are held in ascending order: their positions by binary search.
        positions = np.minimum(np.searchsorted(held.ids, wanted), len(held.ids) - 1)
        for position in positions[held.ids[positions] == wanted]:  # held, not deleted since
            if allowed[position]:
                found.setdefault(int(held.ids[position]), float(scores[position]))
    return found


class MemorySearch:
    def __init__(
        self,
        store: MemoryStore,
        embedder: Embedder,
        *,
        mode: SearchMode = SearchMode.HYBRID,
        cache_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._mode = mode
        self.vectors = VectorCache(cache_bytes)
        # Query embeddings get a thread of their own: they never queue behind indexing.
        self._queries = ThreadPoolExecutor(1, thread_name_prefix="memory-query")

    def close(self) -> None:
        self._queries.shutdown(wait=False, cancel_futures=True)

    async def search(
        self,
        tenant_id: str,
        entity_id: str,
        process_id: str | None,
        query: str,
        *,
        page_size: int,
        token_budget: int,
        exclude_session_id: str = "",
    ) -> list[FoundMemory]:
        """The entity's best passages for `query` (of `process_id`'s sessions, or of all its
        processes when None; without `exclude_session_id`'s), best first, within the page
        and budget."""
        with MEMORY_SEARCH_SECONDS.time():
            candidates = max(MIN_CANDIDATES, 3 * page_size)
            embedding = None
            if self._mode is not SearchMode.LEXICAL:
                # The query's embedding, the full-text matches and the entity's vectors at once.
                embedding = asyncio.get_running_loop().run_in_executor(
                    self._queries, self._embedder.embed_one, query
                )
            lexical, held = await asyncio.gather(
                self._lexical(
                    tenant_id, entity_id, process_id, exclude_session_id, query, candidates
                )
                if self._mode is not SearchMode.DENSE
                else _nothing(),
                self._entity_vectors(tenant_id, entity_id)
                if embedding is not None
                else _no_vectors(),
            )
            dense: dict[int, float] = {}
            if embedding is not None and held is not None:
                dense = nearest(
                    held,
                    await embedding,
                    process_id,
                    exclude_session_id,
                    candidates,
                    also=lexical.keys(),
                )
            ranked = combined(dense, lexical) if dense else ranked_by(lexical)
            rows = await self._store.passages(tenant_id, [item for item, _ in ranked[:MAX_FETCH]])
            tokens = {passage_id: int(row.token_count) for passage_id, row in rows.items()}
            return [
                FoundMemory(
                    session_id=rows[passage_id].session_id,
                    sequences=list(
                        range(int(rows[passage_id].seq_first), int(rows[passage_id].seq_last) + 1)
                    ),
                    text=rows[passage_id].text,
                    score=score,
                    token_count=tokens[passage_id],
                    create_time=rows[passage_id].create_time,
                )
                for passage_id, score in within(ranked, tokens, page_size, token_budget)
            ]

    async def _lexical(
        self,
        tenant_id: str,
        entity_id: str,
        process_id: str | None,
        exclude_session_id: str,
        query: str,
        limit: int,
    ) -> dict[int, float]:
        """Full-text matches: passage id -> match strength in [0, 1)."""
        words = query_words(query)
        if not words:
            return {}
        if self._store.dialect == "sqlite":
            match = fts5_match(scope_token(tenant_id, entity_id), words)
        else:
            match = tsquery(words)
        scope = {
            "tenant_id": tenant_id,
            "entity_id": entity_id,
            "process_id": process_id or "",
            "all_processes": int(process_id is None),
            "exclude_session_id": exclude_session_id,
        }
        half = LEXICAL_HALF_STRENGTH[self._store.dialect]
        return {
            passage_id: saturated(score, half)
            for passage_id, score in await self._store.lexical(scope, match, limit)
        }

    async def _entity_vectors(self, tenant_id: str, entity_id: str) -> _EntityVectors:
        """The entity's vectors as the database has them now: those held, extended by the
        passages indexed since (ids only grow) when nothing was deleted meanwhile; all of
        them read again otherwise."""
        key = (tenant_id, entity_id)
        version = await self._store.vectors_version(tenant_id, entity_id)
        held = self.vectors.get(key, version)
        if held is not None:
            return held
        stale = self.vectors.peek(key)
        if stale is not None and version[1] > stale.version[1]:
            rows = await self._store.vectors(tenant_id, entity_id, after_id=stale.version[1])
            grown_to = (stale.version[0] + len(rows), int(rows[-1].id) if rows else 0)
            if grown_to == version:  # only additions: nothing held was deleted
                grown = await asyncio.to_thread(_extended, stale, version, rows)
                self.vectors.put(key, grown)
                return grown
        rows = await self._store.vectors(tenant_id, entity_id)
        # The rows read may be newer than `version`: held under the version they show.
        current = (len(rows), int(rows[-1].id) if rows else 0)
        held = await asyncio.to_thread(_entity_vectors, current, rows)
        self.vectors.put(key, held)
        return held


__all__ = [
    "MAX_PAGE_SIZE",
    "MAX_QUERY_CHARS",
    "FoundMemory",
    "MemorySearch",
    "SearchMode",
    "VectorCache",
    "search_bounds",
]
