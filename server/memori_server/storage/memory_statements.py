"""The statements of long-term memory, compiled once per dialect like `statements`.

Full-text search differs by database: SQLite's FTS5 table and PostgreSQL's stored
`search_vector` with a GIN index; in both a passage's `scope` token restricts a match to one
tenant's entity. Everything else is SQLAlchemy Core.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Integer, and_, bindparam, delete, func, insert, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Dialect

from memori_server.storage.compiled import CompiledStatement
from memori_server.storage.tables import memory_passages, messages, sessions

# Passages fetched by id in one statement (search results); unused slots are bound to 0.
MAX_FETCH = 100
_s, _m, _mp = sessions.c, messages.c, memory_passages.c


def _p(name: str, like: Any = None) -> Any:
    return bindparam(name, type_=like.type if like is not None else None)


def _of_session() -> Any:
    return and_(_mp.tenant_id == _p("tenant_id"), _mp.session_id == _p("session_id"))


class MemoryStatements:
    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect.name

        def c(statement: Any) -> CompiledStatement:
            return CompiledStatement(statement, dialect)

        limit = bindparam("limit", type_=Integer())
        # -- indexing ------------------------------------------------------------------------
        self.unindexed_sessions = c(
            select(
                _s.tenant_id, _s.id, _s.entity_id, _s.process_id, _s.indexed_seq, _s.message_count
            )
            .where(_s.message_count > _s.indexed_seq)
            .order_by(_s.update_time)
            .limit(limit)
        )
        self.messages_after = c(
            select(_m.seq, _m.role, _m.content, _m.content_parts, _m.tool_calls, _m.create_time)
            .where(
                _m.tenant_id == _p("tenant_id"),
                _m.session_id == _p("session_id"),
                _m.seq > bindparam("after", type_=BigInteger()),
            )
            .order_by(_m.seq)
            .limit(limit)
        )
        self.last_passage = c(
            select(_mp.seq_first, _mp.seq_last)
            .where(_of_session())
            .order_by(_mp.seq_first.desc())
            .limit(1)
        )
        self.delete_passages_from = c(
            delete(memory_passages).where(
                _of_session(), _mp.seq_first >= bindparam("seq_first", type_=BigInteger())
            )
        )
        self.insert_passage = c(
            insert(memory_passages).values(
                tenant_id=_p("tenant_id"),
                session_id=_p("session_id"),
                entity_id=_p("entity_id"),
                process_id=_p("process_id"),
                scope=_p("scope"),
                seq_first=_p("seq_first", _mp.seq_first),
                seq_last=_p("seq_last", _mp.seq_last),
                text=_p("text"),
                token_count=_p("token_count"),
                create_time=_p("create_time", _mp.create_time),
                embedding=_p("embedding", _mp.embedding),
            )
        )
        # Conditional on the watermark read: of two indexers, the second changes nothing.
        self.advance_watermark = c(
            update(sessions)
            .where(
                _s.tenant_id == _p("tenant_id"),
                _s.id == _p("session_id"),
                _s.indexed_seq == bindparam("was", type_=BigInteger()),
            )
            .values(indexed_seq=bindparam("through", type_=BigInteger()))
            .returning(_s.id)
        )
        self.index_status = c(
            select(
                func.coalesce(func.sum(_s.message_count - _s.indexed_seq), 0).label("pending"),
                func.coalesce(func.sum(_s.indexed_seq), 0).label("indexed"),
            ).where(_s.tenant_id == _p("tenant_id"))
        )
        # -- search --------------------------------------------------------------------------
        of_entity = and_(_mp.tenant_id == _p("tenant_id"), _mp.entity_id == _p("entity_id"))
        # The entity's vectors after an id (all of them after 0): a search filters them in
        # memory, where they are held, and reads only those indexed since.
        self.vectors = c(
            select(_mp.id, _mp.session_id, _mp.process_id, _mp.token_count, _mp.embedding)
            .where(of_entity, _mp.id > bindparam("after_id", type_=BigInteger()))
            .order_by(_mp.id)
        )
        # Changes whenever a passage of the entity is added or deleted: ids only grow.
        self.vectors_version = c(
            select(func.count(_mp.id).label("count"), func.max(_mp.id).label("last")).where(
                of_entity
            )
        )
        slots = [bindparam(f"id{n}", type_=BigInteger()) for n in range(MAX_FETCH)]
        self.passages_by_id = c(
            select(
                _mp.id,
                _mp.session_id,
                _mp.seq_first,
                _mp.seq_last,
                _mp.text,
                _mp.create_time,
            ).where(_mp.tenant_id == _p("tenant_id"), _mp.id.in_(slots))
        )
        if dialect.name == "sqlite":
            ranked = (
                "SELECT p.id, -bm25(memory_fts, 0.0, 1.0) AS score, p.token_count FROM memory_fts "
                "JOIN memory_passages AS p ON p.id = memory_fts.rowid "
                "WHERE memory_fts MATCH :match AND p.tenant_id = :tenant_id "
                "AND p.entity_id = :entity_id "
                "AND (:all_processes = 1 OR p.process_id = :process_id) "
                "AND p.session_id != :exclude_session_id ORDER BY score DESC, p.id LIMIT :limit"
            )
        else:
            # `:match` is the scope token AND any of the words: the GIN index intersects them.
            # The subquery (OFFSET 0 keeps the planner from merging it) leaves the planner
            # only that index to find them with: given the entity's columns too, it scanned
            # all of the entity's passages by the btree index while statistics were missing
            # (a freshly filled table: 10 to 50 ms instead of 3). The rank counts the words
            # alone, `:words`; the entity's columns are checked again as well.
            ranked = (
                "SELECT p.id, ts_rank_cd(p.search_vector, q.words) AS score, p.token_count "
                "FROM (SELECT id, search_vector, token_count, tenant_id, entity_id, "
                "process_id, session_id FROM memory_passages "
                "WHERE search_vector @@ to_tsquery('english', :match) OFFSET 0) AS p, "
                "to_tsquery('english', :words) AS q(words) "
                "WHERE numnode(q.words) > 0 AND p.tenant_id = :tenant_id "
                "AND p.entity_id = :entity_id "
                "AND (:all_processes = 1 OR p.process_id = :process_id) "
                "AND p.session_id != :exclude_session_id ORDER BY score DESC, p.id LIMIT :limit"
            )
        self.lexical = c(
            sql_text(ranked).bindparams(
                bindparam("limit", type_=Integer()),
            )
        )


__all__ = ["MAX_FETCH", "MemoryStatements"]
