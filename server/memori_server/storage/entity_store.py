"""Everything of one entity within a tenant: erased in one transaction, or exported in pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from memori_server.storage import statements as sql
from memori_server.storage.records import SessionRecord, StoredMessage
from memori_server.storage.store import Store
from memori_server.storage.turn_store import entity_lock_key
from memori_server.storage.units import Fetch, Op, Unit, Work, ops

EXPORT_SESSIONS_PAGE = 100
EXPORT_MESSAGES_PAGE = 500


@dataclass(frozen=True, slots=True)
class Erased:
    sessions: int
    messages: int
    requests: int
    memories: int


class EntityStore(Store):
    async def erase(self, tenant_id: str, entity_id: str) -> Erased:
        """Delete every session of the entity in the tenant, with its messages, pointers,
        request records and memory passages, in one transaction, and record the erasure, so
        a chat call begun before it cannot create a session for the entity afterwards."""
        key = {"tenant_id": tenant_id, "entity_id": entity_id}

        def unit() -> Unit[Erased]:
            writes: list[Op] = []
            if self._db.dialect == "postgresql":  # waits for turns storing into them now
                writes.append(Op(self._sql.entity_lock, {"key": entity_lock_key(**key)}))
                writes.append(Op(self._sql.lock_entity_sessions, key))
            writes += [
                Op(self._sql.record_erasure, {**key, "now": self._clock()}),
                Op(self._sql.erase_messages, key, Fetch.ROWCOUNT),
                Op(self._sql.erase_requests, key, Fetch.ROWCOUNT),
                Op(self._sql.erase_memories, key, Fetch.ROWCOUNT),
                Op(self._sql.erase_pointers, key),
                Op(self._sql.erase_sessions, key, Fetch.ROWCOUNT),
            ]
            results = yield ops(*writes, commit=True)
            *_, messages, requests, memories, _, erased_sessions = results
            return Erased(int(erased_sessions), int(messages), int(requests), int(memories))

        erased = await self._db.run(Work(unit, writes=True, heavy=True))
        if self._cache is not None:
            self._cache.forget_entity(tenant_id, entity_id)
        return erased

    async def export(
        self, tenant_id: str, entity_id: str
    ) -> AsyncIterator[tuple[SessionRecord, list[StoredMessage]]]:
        """Each session of the entity (by creation time, then id) with runs of its messages
        (in sequence order, at most EXPORT_MESSAGES_PAGE each); page by page, so a large
        entity never sits in memory or holds a transaction."""
        after_time, after_id = sql.EARLIEST, ""
        while True:
            page = await self._read(
                self._sql.entity_sessions_page,
                {
                    "tenant_id": tenant_id,
                    "entity_id": entity_id,
                    "after_time": after_time,
                    "after_id": after_id,
                    "limit": EXPORT_SESSIONS_PAGE,
                },
            )
            for row in page:
                record = sql.session_record(row)
                async for messages in self._messages(tenant_id, record.id):
                    yield record, messages
            if len(page) < EXPORT_SESSIONS_PAGE:
                return
            after_time, after_id = page[-1].create_time, page[-1].id

    async def _messages(
        self, tenant_id: str, session_id: str
    ) -> AsyncIterator[list[StoredMessage]]:
        after = 0
        while True:
            rows = await self._read(
                self._sql.messages_page,
                {
                    "tenant_id": tenant_id,
                    "session_id": session_id,
                    "after": after,
                    "limit": EXPORT_MESSAGES_PAGE,
                },
            )
            if rows or after == 0:  # a session without messages comes once, empty
                yield [sql.stored_message(row) for row in rows]
            if len(rows) < EXPORT_MESSAGES_PAGE:
                return
            after = rows[-1].seq

    async def _read(self, statement: Any, parameters: dict[str, Any]) -> list[Any]:
        def unit() -> Unit[list[Any]]:
            (rows,) = yield ops(Op(statement, parameters, Fetch.ALL), commit=True)
            return list(rows)

        return await self._db.run(Work(unit, writes=False, heavy=True))


__all__ = ["EntityStore", "Erased"]
