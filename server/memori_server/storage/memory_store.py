"""Long-term memory's storage: the indexer's reads and writes, and the searches' reads.

Index batches and an entity's vectors are many rows: those units never run on the event loop
(heavy), and a completion never waits behind them. A search's own reads are few rows: its
full-text query may run on the loop where the loop does not wait for it (slow), and reading
a recall's few passages by id may run on it anyway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from memori_server.storage.database import Database
from memori_server.storage.memory_statements import MAX_FETCH, MemoryStatements
from memori_server.storage.units import ConstraintViolation, Fetch, Op, Unit, Work, ops

# Passages read by id in one statement that may run on the event loop (a recall's page).
FEW_PASSAGES = 10


def scope_token(tenant_id: str, entity_id: str) -> str:
    """The full-text token of one tenant's entity: letters and digits only, so FTS5 keeps
    it whole, and a digest, so no id's spelling can collide with a word."""
    digest = hashlib.blake2b(f"{tenant_id}\0{entity_id}".encode(), digest_size=16)
    return "m" + digest.hexdigest()


@dataclass(frozen=True, slots=True)
class PendingSession:
    tenant_id: str
    session_id: str
    entity_id: str
    process_id: str
    indexed_seq: int
    message_count: int


@dataclass(frozen=True, slots=True)
class IndexInput:
    session: PendingSession
    rows: list[Any]
    """Stored messages in sequence order: those after the watermark, preceded by those of
    the last passage when the new ones continue it."""
    rebuild_from: int | None
    """The first sequence of the passage built again, if any."""


@dataclass(frozen=True, slots=True)
class NewPassage:
    seq_first: int
    seq_last: int
    text: str
    token_count: int
    create_time: Any
    embedding: bytes


@dataclass(frozen=True, slots=True)
class LexicalQuery:
    match: str
    """What a passage must match: FTS5 MATCH text (SQLite) or `to_tsquery` text (PostgreSQL),
    the entity's scope token and any of the words."""
    words: str | None
    """PostgreSQL: the `to_tsquery` text of the words alone, which the rank counts."""
    process_id: str | None
    """Only this process's passages; None: any."""
    exclude_session_id: str
    """'' for none."""
    limit: int


@dataclass(frozen=True, slots=True)
class SearchReads:
    version: tuple[int, int] | None
    """(count, newest id) of the entity's passages, when asked for."""
    vectors: list[Any]
    lexical: list[tuple[int, float, int]]


@dataclass(frozen=True, slots=True)
class IndexStatus:
    pending: int
    indexed: int


class MemoryStore:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._sql = MemoryStatements(database.engine.dialect)
        self.dialect = self._sql.dialect

    async def _read(self, op: Op, heavy: bool = True) -> Any:
        def unit() -> Unit[Any]:
            (result,) = yield ops(op, commit=True)
            return result

        return await self._db.run(Work(unit, writes=False, heavy=heavy))

    # -- indexing ----------------------------------------------------------------------------

    async def pending_sessions(self, limit: int) -> list[PendingSession]:
        """Sessions with messages not yet indexed, longest unchanged first."""
        rows = await self._read(Op(self._sql.unindexed_sessions, {"limit": limit}, Fetch.ALL))
        return [
            PendingSession(
                row.tenant_id,
                row.id,
                row.entity_id,
                row.process_id,
                int(row.indexed_seq),
                int(row.message_count),
            )
            for row in rows
        ]

    async def index_input(
        self, session: PendingSession, limit: int, continues: Callable[[list[Any]], bool]
    ) -> IndexInput:
        """The messages to index next (at most `limit` new ones). When `continues(rows)`
        says they continue the session's last passage, that passage's messages are read
        again too, so it is built again with its continuation."""
        key = {"tenant_id": session.tenant_id, "session_id": session.session_id}

        def unit() -> Unit[IndexInput]:
            after = {**key, "after": session.indexed_seq, "limit": limit}
            last, rows = yield ops(
                Op(self._sql.last_passage, key, Fetch.ONE),
                Op(self._sql.messages_after, after, Fetch.ALL),
                commit=True,
            )
            rows = list(rows)
            if last is None or not continues(rows):
                return IndexInput(session, rows, None)
            seq_first = int(last.seq_first)
            span = session.indexed_seq - seq_first + 1
            (earlier,) = yield ops(
                Op(
                    self._sql.messages_after,
                    {**key, "after": seq_first - 1, "limit": span},
                    Fetch.ALL,
                ),
                commit=True,
            )
            return IndexInput(session, [*earlier, *rows], seq_first)

        return await self._db.run(Work(unit, writes=False, heavy=True))

    async def write_index(
        self, source: IndexInput, through: int, passages: Sequence[NewPassage]
    ) -> bool:
        """Store the passages and move the session's watermark to `through`, in one
        transaction, only if the watermark is still where it was read (another process did
        not index it meanwhile) and the session still exists. Returns whether it stored."""
        session = source.session
        key = {"tenant_id": session.tenant_id, "session_id": session.session_id}
        rows = [
            {
                **key,
                "entity_id": session.entity_id,
                "process_id": session.process_id,
                "scope": scope_token(session.tenant_id, session.entity_id),
                "seq_first": passage.seq_first,
                "seq_last": passage.seq_last,
                "text": passage.text,
                "token_count": passage.token_count,
                "create_time": passage.create_time,
                "embedding": passage.embedding,
            }
            for passage in passages
        ]

        def unit() -> Unit[bool]:
            (advanced,) = yield ops(
                Op(
                    self._sql.advance_watermark,
                    {**key, "was": session.indexed_seq, "through": through},
                    Fetch.ONE,
                )
            )
            if advanced is None:
                return False
            writes: list[Op] = []
            if source.rebuild_from is not None:
                writes.append(
                    Op(self._sql.delete_passages_from, {**key, "seq_first": source.rebuild_from})
                )
            if rows:
                writes.append(Op(self._sql.insert_passage, rows))
            try:
                yield ops(*writes, commit=True)
            except ConstraintViolation:  # the session was deleted meanwhile
                return False
            return True

        return await self._db.run(Work(unit, writes=True, heavy=True))

    async def status(self, tenant_id: str) -> IndexStatus:
        row = await self._read(
            Op(self._sql.index_status, {"tenant_id": tenant_id}, Fetch.ONE),
        )
        return IndexStatus(int(row.pending or 0), int(row.indexed or 0))

    # -- search ------------------------------------------------------------------------------

    async def search_reads(
        self,
        tenant_id: str,
        entity_id: str,
        *,
        vectors_after: int | None,
        version: bool,
        lexical: LexicalQuery | None,
    ) -> SearchReads:
        """What a search reads, in one transaction: the entity's passages with an id above
        `vectors_after` (None: none), as `vectors` returns them; if `version`, the entity's
        (count, newest id), read before them; and the full-text matches of `lexical` (None:
        none), as (id, score: higher is better, token_count), best first. Reading all
        vectors (`vectors_after` 0) is heavy; otherwise the rows are few, and the full-text
        query is slow."""
        of_entity = {"tenant_id": tenant_id, "entity_id": entity_id}
        wanted = []
        if version:
            wanted.append(Op(self._sql.vectors_version, of_entity, Fetch.ONE))
        if vectors_after is not None:
            wanted.append(
                Op(self._sql.vectors, {**of_entity, "after_id": vectors_after}, Fetch.ALL)
            )
        if lexical is not None:
            parameters = {
                **of_entity,
                "process_id": lexical.process_id or "",
                "all_processes": int(lexical.process_id is None),
                "exclude_session_id": lexical.exclude_session_id,
                "match": lexical.match,
                "limit": lexical.limit,
            }
            if lexical.words is not None:
                parameters["words"] = lexical.words
            wanted.append(Op(self._sql.lexical, parameters, Fetch.ALL))

        def unit() -> Unit[SearchReads]:
            results = list((yield ops(*wanted, commit=True)))
            counted = results.pop(0) if version else None
            vectors = list(results.pop(0)) if vectors_after is not None else []
            matches = results.pop(0) if lexical is not None else []
            return SearchReads(
                (int(counted.count or 0), int(counted.last or 0)) if counted else None,
                vectors,
                [(int(row[0]), float(row[1]), int(row[2])) for row in matches],
            )

        return await self._db.run(
            Work(unit, writes=False, heavy=vectors_after == 0, slow=lexical is not None)
        )

    async def vectors(self, tenant_id: str, entity_id: str, after_id: int = 0) -> list[Any]:
        """The entity's passages with an id above `after_id` as (id, session_id, process_id,
        token_count, embedding), by id."""
        return list(
            await self._read(
                Op(
                    self._sql.vectors,
                    {"tenant_id": tenant_id, "entity_id": entity_id, "after_id": after_id},
                    Fetch.ALL,
                )
            )
        )

    async def passages(self, tenant_id: str, ids: Sequence[int]) -> dict[int, Any]:
        """The passages of `ids` (at most MAX_FETCH), by id; those deleted meanwhile absent."""
        wanted = list(ids)[:MAX_FETCH]
        parameters: dict[str, Any] = {"tenant_id": tenant_id}
        parameters |= {f"id{n}": wanted[n] if n < len(wanted) else 0 for n in range(MAX_FETCH)}
        rows = await self._read(
            Op(self._sql.passages_by_id, parameters, Fetch.ALL), heavy=len(wanted) > FEW_PASSAGES
        )
        return {int(row.id): row for row in rows}


__all__ = [
    "IndexInput",
    "IndexStatus",
    "LexicalQuery",
    "MemoryStore",
    "NewPassage",
    "PendingSession",
    "SearchReads",
    "scope_token",
]
