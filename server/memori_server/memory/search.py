"""Hybrid search over an entity's passages: full-text rank and embedding similarity, fused.

The entity's vectors are held in memory between searches (`vectors`); the passages picked
are read from the database, so a passage deleted meanwhile is never returned.
"""

from __future__ import annotations

import asyncio
import enum
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from memori_server.memory.embedder import Embedder
from memori_server.memory.ranking import (
    LEXICAL_HALF_STRENGTH,
    combined,
    fts5_match,
    query_words,
    ranked_by,
    saturated,
    scoped_tsquery,
    tsquery,
    within,
)
from memori_server.memory.vectors import (
    LOOP_ROWS,
    VERIFY_SECONDS,
    EntityVectors,
    VectorCache,
    nearest,
    read,
)
from memori_server.metrics import MEMORY_SEARCH_SECONDS
from memori_server.storage.memory_store import (
    LexicalQuery,
    MemoryStore,
    SearchReads,
    scope_token,
)
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
        and budget.

        Two round trips: one transaction reads the vectors indexed since those held and the
        full-text matches while the query is embedded; the second reads the passages picked."""
        with MEMORY_SEARCH_SECONDS.time():
            key = (tenant_id, entity_id)
            candidates = max(MIN_CANDIDATES, 3 * page_size)
            dense_on = self._mode is not SearchMode.LEXICAL
            embedding = None
            if dense_on:
                embedding = asyncio.get_running_loop().run_in_executor(
                    self._queries, self._embedder.embed_one, query
                )
            held = self.vectors.get(key) if dense_on else None
            reads = await self._store.search_reads(
                tenant_id,
                entity_id,
                vectors_after=(held.last_id if held is not None else 0) if dense_on else None,
                version=held is not None and time.monotonic() - held.verified > VERIFY_SECONDS,
                lexical=self._lexical_query(
                    tenant_id, entity_id, process_id, exclude_session_id, query, candidates
                )
                if self._mode is not SearchMode.DENSE
                else None,
            )
            half = LEXICAL_HALF_STRENGTH[self._store.dialect]
            lexical = {passage_id: saturated(score, half) for passage_id, score, _ in reads.lexical}
            tokens = {passage_id: count for passage_id, _, count in reads.lexical}
            if embedding is None:
                ranked = ranked_by(lexical)
            else:
                vectors = await self._current(key, held, reads)
                dense = nearest(
                    vectors,
                    await embedding,
                    process_id,
                    exclude_session_id,
                    candidates,
                    also=lexical.keys(),
                )
                tokens |= vectors.token_counts(dense.keys())
                ranked = combined(dense, lexical) if dense else ranked_by(lexical)
            return await self._picked(key, ranked, tokens, page_size, token_budget)

    async def _picked(
        self,
        key: tuple[str, str],
        ranked: list[tuple[int, float]],
        tokens: dict[int, int],
        page_size: int,
        token_budget: int,
    ) -> list[FoundMemory]:
        """The best of `ranked` within the page and budget, read; a passage deleted since it
        was ranked is passed over for the next, and never ranked again."""
        found: dict[int, Any] = {}
        while True:
            picked = within(ranked, tokens, page_size, token_budget)
            wanted = [passage_id for passage_id, _ in picked if passage_id not in found]
            if not wanted:
                break
            rows = await self._store.passages(key[0], wanted)
            found |= rows
            deleted = [passage_id for passage_id in wanted if passage_id not in rows]
            for passage_id in deleted:
                del tokens[passage_id]
            if deleted:
                self.vectors.mark_deleted(key, deleted)
        return [
            FoundMemory(
                session_id=found[passage_id].session_id,
                sequences=list(
                    range(int(found[passage_id].seq_first), int(found[passage_id].seq_last) + 1)
                ),
                text=found[passage_id].text,
                score=score,
                token_count=tokens[passage_id],
                create_time=found[passage_id].create_time,
            )
            for passage_id, score in picked
        ]

    def _lexical_query(
        self,
        tenant_id: str,
        entity_id: str,
        process_id: str | None,
        exclude_session_id: str,
        query: str,
        limit: int,
    ) -> LexicalQuery | None:
        """The full-text query of `query` in this database's syntax (None: no words)."""
        words = query_words(query)
        if not words:
            return None
        scope = scope_token(tenant_id, entity_id)
        if self._store.dialect == "sqlite":
            return LexicalQuery(
                fts5_match(scope, words), None, process_id, exclude_session_id, limit
            )
        return LexicalQuery(
            scoped_tsquery(scope, words), tsquery(words), process_id, exclude_session_id, limit
        )

    async def _current(
        self, key: tuple[str, str], held: EntityVectors | None, reads: SearchReads
    ) -> EntityVectors:
        """The entity's vectors as the database has them now (deletions aside, see
        `vectors`): those held, extended by the passages indexed since; all of them read
        again when a check finds a deletion that no search came across."""
        if held is None:
            fresh = await asyncio.to_thread(read, reads.vectors)
            self.vectors.put(key, fresh)
            return fresh
        if len(reads.vectors) > LOOP_ROWS:
            current = await asyncio.to_thread(held.extended, reads.vectors, False)
        else:
            current = held.extended(reads.vectors)
        if reads.version is not None:
            if current.matches(reads.version):
                current = replace(current, verified=time.monotonic())
            else:
                rows = await self._store.vectors(*key)
                current = await asyncio.to_thread(read, rows)
        if current is not held:
            self.vectors.put(key, current)
        return current


__all__ = [
    "MAX_PAGE_SIZE",
    "MAX_QUERY_CHARS",
    "FoundMemory",
    "MemorySearch",
    "SearchMode",
    "search_bounds",
]
