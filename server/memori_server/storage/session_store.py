"""Sessions, current-session pointers and messages: the SessionService's storage.

Each public method is one unit of work (see `units`), run by `Database` where the execution
policy says. Database failures surface as `StorageUnavailable`; ownership and existence
problems as the domain errors the RPC layer maps to statuses.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from memori_server.domain import Attribution
from memori_server.errors import AttributionMismatch, NoCurrentSession, SessionNotFound
from memori_server.storage import statements as sql
from memori_server.storage.records import NewMessage, SessionRecord, StoredMessage
from memori_server.storage.store import Store, utc_now
from memori_server.storage.units import ConstraintViolation, Fetch, Op, Unit, Work, ops

HEAVY_PAGE = 256  # a message page beyond this many rows is read off the event loop


@dataclass(frozen=True, slots=True)
class SessionCursor:
    """Position after the last session of a page (keyset pagination)."""

    update_time: datetime
    session_id: str


def check_owner(row: Any, attribution: Attribution | None) -> None:
    if attribution is not None and (
        row.entity_id != attribution.entity_id or row.process_id != attribution.process_id
    ):
        raise AttributionMismatch(row.id)


class SessionStore(Store):
    async def ping(self) -> None:
        await self._db.ping()

    async def reset(self, tenant_id: str, attribution: Attribution) -> SessionRecord:
        """Create a session with a fresh UUID v4 and make it the attribution's current one."""
        now = self._clock()
        record = SessionRecord(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            attribution=attribution,
            create_time=now,
            update_time=now,
            message_count=0,
        )

        def unit() -> Unit[SessionRecord]:
            key = sql.owner(tenant_id, record.id, attribution)
            yield ops(
                Op(self._sql.insert_session, {**key, "now": now}),
                Op(self._sql.point_current, key),
                commit=True,
            )
            return record

        return await self._db.run(Work(unit, writes=True))

    async def set(
        self, tenant_id: str, attribution: Attribution, session_id: str
    ) -> tuple[SessionRecord, bool]:
        """Resume (or create) a session and make it current; returns (session, created)."""
        now = self._clock()
        key = sql.owner(tenant_id, session_id, attribution)

        def unit() -> Unit[tuple[SessionRecord, bool]]:
            # Whatever the outcome, committing is right: another attribution's session is
            # neither touched nor pointed at (both statements check the owner).
            inserted, touched, _ = yield ops(
                Op(self._sql.insert_session_if_absent, {**key, "now": now}, Fetch.ONE),
                Op(self._sql.touch_session, {**key, "now": now}, Fetch.ONE),
                Op(self._sql.point_current, key),
                commit=True,
            )
            if touched is None:
                raise AttributionMismatch(session_id)
            return sql.session_record(touched), inserted is not None

        return await self._db.run(Work(unit, writes=True))

    async def get(
        self, tenant_id: str, session_id: str, attribution: Attribution | None = None
    ) -> SessionRecord:
        row = await self._read_one(
            self._sql.session_by_id, {"tenant_id": tenant_id, "session_id": session_id}
        )
        if row is None:
            raise SessionNotFound(session_id)
        check_owner(row, attribution)
        return sql.session_record(row)

    async def get_current(
        self, tenant_id: str, attribution: Attribution, idle_seconds: float
    ) -> SessionRecord:
        """The attribution's current session if it was active within `idle_seconds`."""
        active_since = datetime.fromtimestamp(self._clock().timestamp() - idle_seconds, UTC)
        row = await self._read_one(
            self._sql.current_session,
            {
                "tenant_id": tenant_id,
                "entity_id": attribution.entity_id,
                "process_id": attribution.process_id,
                "active_since": active_since,
            },
        )
        if row is None:
            raise NoCurrentSession(attribution.entity_id, attribution.process_id, idle_seconds)
        return sql.session_record(row)

    async def _read_one(self, statement: Any, parameters: dict[str, Any]) -> Any:
        def unit() -> Unit[Any]:
            (row,) = yield ops(Op(statement, parameters, Fetch.ONE), commit=True)
            return row

        return await self._db.run(Work(unit, writes=False))

    async def list_sessions(
        self,
        tenant_id: str,
        attribution: Attribution,
        *,
        min_update_time: datetime | None,
        after: SessionCursor | None,
        limit: int,
    ) -> tuple[list[SessionRecord], bool]:
        """A page of sessions, newest activity first; returns (page, more_pages)."""
        parameters = {
            "tenant_id": tenant_id,
            "entity_id": attribution.entity_id,
            "process_id": attribution.process_id,
            "floor": min_update_time or sql.EARLIEST,
            "after_time": after.update_time if after else sql.LATEST,
            "after_id": after.session_id if after else "",
            "limit": limit + 1,
        }

        def unit() -> Unit[list[Any]]:
            (rows,) = yield ops(Op(self._sql.list_sessions, parameters, Fetch.ALL), commit=True)
            return list(rows)

        rows = await self._db.run(Work(unit, writes=False, heavy=limit > HEAVY_PAGE))
        return [sql.session_record(row) for row in rows[:limit]], len(rows) > limit

    async def delete(
        self, tenant_id: str, session_id: str, attribution: Attribution | None = None
    ) -> int:
        """Delete a session, its messages, request records and any pointer to it; returns
        the number of messages deleted."""
        key = {"tenant_id": tenant_id, "session_id": session_id}

        def unit() -> Unit[int]:
            (row,) = yield ops(Op(self._sql.session_by_id, key, Fetch.ONE))
            if row is None:
                raise SessionNotFound(session_id)
            check_owner(row, attribution)
            deleted, *_ = yield ops(*sql.delete_session_ops(self._sql, key), commit=True)
            return int(deleted)

        # Heavy: a long session's messages are many rows to delete.
        deleted = await self._db.run(Work(unit, writes=True, heavy=True))
        if self._cache is not None:
            self._cache.forget_session(tenant_id, session_id)
        return deleted

    async def list_messages(
        self,
        tenant_id: str,
        session_id: str,
        attribution: Attribution | None,
        *,
        after_sequence: int,
        limit: int,
    ) -> tuple[list[StoredMessage], bool]:
        """A page of a session's messages in sequence order; returns (page, more_pages)."""
        key = {"tenant_id": tenant_id, "session_id": session_id}

        def unit() -> Unit[list[Any]]:
            session, rows = yield ops(
                Op(self._sql.session_by_id, key, Fetch.ONE),
                Op(
                    self._sql.messages_page,
                    {**key, "after": after_sequence, "limit": limit + 1},
                    Fetch.ALL,
                ),
                commit=True,
            )
            if session is None:
                raise SessionNotFound(session_id)
            check_owner(session, attribution)
            return list(rows)

        rows = await self._db.run(Work(unit, writes=False, heavy=limit > HEAVY_PAGE))
        return [sql.stored_message(row) for row in rows[:limit]], len(rows) > limit

    async def append_messages(
        self, tenant_id: str, session_id: str, new_messages: Sequence[NewMessage]
    ) -> list[StoredMessage]:
        """Append messages atomically with the next sequence numbers of the session."""
        now = self._clock()
        turn = list(new_messages)

        def unit() -> Unit[list[StoredMessage]]:
            (session,) = yield ops(
                Op(
                    self._sql.session_by_id,
                    {"tenant_id": tenant_id, "session_id": session_id},
                    Fetch.ONE,
                )
            )
            if session is None:
                raise SessionNotFound(session_id)
            key = sql.owner(tenant_id, session_id, sql.session_record(session).attribution)
            try:
                counted, *_ = yield ops(*sql.append_ops(self._sql, key, turn, now))
            except ConstraintViolation:
                raise SessionNotFound(session_id) from None
            last = counted.message_count
            return [
                StoredMessage(
                    sequence=last - len(turn) + index + 1, message=message, create_time=now
                )
                for index, message in enumerate(turn)
            ]

        return await self._db.run(Work(unit, writes=True, heavy=len(turn) > HEAVY_PAGE))


__all__ = ["SessionCursor", "SessionStore", "check_owner", "utc_now"]
