"""Sessions, current-session pointers and messages: every read and write of them.

Each public method is one transaction. Database failures surface as `StorageUnavailable`;
ownership and existence problems as the domain errors the RPC layer maps to statuses.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from memori_server.errors import (
    AttributionMismatch,
    NoCurrentSession,
    SessionNotFound,
    StorageUnavailable,
)
from memori_server.storage.engine import WRITE_OPTION
from memori_server.storage.records import NewMessage, SessionRecord, StoredMessage
from memori_server.storage.tables import current_sessions, messages, sessions
from memori_server.validation import Attribution


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SessionCursor:
    """Position after the last session of a page (keyset pagination)."""

    update_time: datetime
    session_id: str


def _session_record(row: Row[Any]) -> SessionRecord:
    return SessionRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        attribution=Attribution(entity_id=row.entity_id, process_id=row.process_id),
        create_time=row.create_time,
        update_time=row.update_time,
        message_count=row.message_count,
    )


def _stored_message(row: Row[Any]) -> StoredMessage:
    return StoredMessage(
        sequence=row.seq,
        message=NewMessage(
            role=row.role,
            content=row.content,
            content_parts=row.content_parts,
            name=row.name,
            tool_calls=row.tool_calls,
            tool_call_id=row.tool_call_id,
            token_count=row.token_count,
        ),
        create_time=row.create_time,
    )


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, OperationalError | InterfaceError | PoolTimeoutError | OSError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def _owned_by(row: Row[Any], attribution: Attribution | None) -> bool:
    return attribution is None or (
        row.entity_id == attribution.entity_id and row.process_id == attribution.process_id
    )


class SessionStore:
    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._clock = clock
        self._dialect = postgresql if engine.dialect.name == "postgresql" else sqlite

    @asynccontextmanager
    async def _transaction(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        try:
            async with (self._writer if write else self._engine).begin() as conn:
                yield conn
        except Exception as error:
            if _is_transient(error):
                raise StorageUnavailable(
                    f"database unavailable ({type(error).__name__}); retry later"
                ) from error
            raise

    async def ping(self) -> None:
        async with self._transaction(write=False) as conn:
            await conn.execute(text("SELECT 1"))

    async def _make_current(
        self, conn: AsyncConnection, tenant_id: str, attribution: Attribution, session_id: str
    ) -> None:
        stmt = self._dialect.insert(current_sessions).values(
            tenant_id=tenant_id,
            entity_id=attribution.entity_id,
            process_id=attribution.process_id,
            session_id=session_id,
        )
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "entity_id", "process_id"],
                set_={"session_id": stmt.excluded.session_id},
            )
        )

    async def _select_session(
        self, conn: AsyncConnection, tenant_id: str, session_id: str
    ) -> Row[Any]:
        row = (
            await conn.execute(
                select(sessions).where(
                    sessions.c.tenant_id == tenant_id, sessions.c.id == session_id
                )
            )
        ).first()
        if row is None:
            raise SessionNotFound(session_id)
        return row

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
        async with self._transaction(write=True) as conn:
            await conn.execute(
                insert(sessions).values(
                    tenant_id=tenant_id,
                    id=record.id,
                    entity_id=attribution.entity_id,
                    process_id=attribution.process_id,
                    create_time=now,
                    update_time=now,
                    message_count=0,
                )
            )
            await self._make_current(conn, tenant_id, attribution, record.id)
        return record

    async def set(
        self, tenant_id: str, attribution: Attribution, session_id: str
    ) -> tuple[SessionRecord, bool]:
        """Resume (or create) a session and make it current; returns (session, created)."""
        now = self._clock()
        async with self._transaction(write=True) as conn:
            created = (
                await conn.execute(
                    self._dialect.insert(sessions)
                    .values(
                        tenant_id=tenant_id,
                        id=session_id,
                        entity_id=attribution.entity_id,
                        process_id=attribution.process_id,
                        create_time=now,
                        update_time=now,
                        message_count=0,
                    )
                    .on_conflict_do_nothing(index_elements=["tenant_id", "id"])
                )
            ).rowcount == 1
            row = (
                await conn.execute(
                    update(sessions)
                    .where(
                        sessions.c.tenant_id == tenant_id,
                        sessions.c.id == session_id,
                        sessions.c.entity_id == attribution.entity_id,
                        sessions.c.process_id == attribution.process_id,
                    )
                    .values(update_time=now)
                    .returning(*sessions.c)
                )
            ).first()
            if row is None:
                raise AttributionMismatch(session_id)
            await self._make_current(conn, tenant_id, attribution, session_id)
        return _session_record(row), created

    async def get(
        self, tenant_id: str, session_id: str, attribution: Attribution | None = None
    ) -> SessionRecord:
        async with self._transaction(write=False) as conn:
            row = await self._select_session(conn, tenant_id, session_id)
        if not _owned_by(row, attribution):
            raise AttributionMismatch(session_id)
        return _session_record(row)

    async def get_current(
        self, tenant_id: str, attribution: Attribution, idle_seconds: float
    ) -> SessionRecord:
        """The attribution's current session if it was active within `idle_seconds`."""
        active_since = datetime.fromtimestamp(self._clock().timestamp() - idle_seconds, UTC)
        async with self._transaction(write=False) as conn:
            row = (
                await conn.execute(
                    select(sessions)
                    .join(
                        current_sessions,
                        and_(
                            current_sessions.c.tenant_id == sessions.c.tenant_id,
                            current_sessions.c.session_id == sessions.c.id,
                        ),
                    )
                    .where(
                        current_sessions.c.tenant_id == tenant_id,
                        current_sessions.c.entity_id == attribution.entity_id,
                        current_sessions.c.process_id == attribution.process_id,
                        sessions.c.update_time >= active_since,
                    )
                )
            ).first()
        if row is None:
            raise NoCurrentSession(attribution.entity_id, attribution.process_id, idle_seconds)
        return _session_record(row)

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
        query = select(sessions).where(
            sessions.c.tenant_id == tenant_id,
            sessions.c.entity_id == attribution.entity_id,
            sessions.c.process_id == attribution.process_id,
        )
        if min_update_time is not None:
            query = query.where(sessions.c.update_time >= min_update_time)
        if after is not None:
            query = query.where(
                or_(
                    sessions.c.update_time < after.update_time,
                    and_(
                        sessions.c.update_time == after.update_time,
                        sessions.c.id < after.session_id,
                    ),
                )
            )
        query = query.order_by(sessions.c.update_time.desc(), sessions.c.id.desc())
        async with self._transaction(write=False) as conn:
            rows = (await conn.execute(query.limit(limit + 1))).all()
        return [_session_record(row) for row in rows[:limit]], len(rows) > limit

    async def delete(
        self, tenant_id: str, session_id: str, attribution: Attribution | None = None
    ) -> int:
        """Delete a session, its messages and any pointer to it; returns the message count."""
        async with self._transaction(write=True) as conn:
            row = await self._select_session(conn, tenant_id, session_id)
            if not _owned_by(row, attribution):
                raise AttributionMismatch(session_id)
            in_session = and_(
                messages.c.tenant_id == tenant_id, messages.c.session_id == session_id
            )
            deleted = (await conn.execute(delete(messages).where(in_session))).rowcount
            await conn.execute(
                delete(current_sessions).where(
                    current_sessions.c.tenant_id == tenant_id,
                    current_sessions.c.session_id == session_id,
                )
            )
            await conn.execute(
                delete(sessions).where(
                    sessions.c.tenant_id == tenant_id, sessions.c.id == session_id
                )
            )
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
        async with self._transaction(write=False) as conn:
            row = await self._select_session(conn, tenant_id, session_id)
            if not _owned_by(row, attribution):
                raise AttributionMismatch(session_id)
            rows = (
                await conn.execute(
                    select(messages)
                    .where(
                        messages.c.tenant_id == tenant_id,
                        messages.c.session_id == session_id,
                        messages.c.seq > after_sequence,
                    )
                    .order_by(messages.c.seq)
                    .limit(limit + 1)
                )
            ).all()
        return [_stored_message(row) for row in rows[:limit]], len(rows) > limit

    async def append_messages(
        self, tenant_id: str, session_id: str, new_messages: Sequence[NewMessage]
    ) -> list[StoredMessage]:
        """Append messages atomically with the next sequence numbers of the session.

        The counter update locks the session row until commit, so concurrent appends to one
        session queue up and the sequence stays gap-free and totally ordered.
        """
        now = self._clock()
        count = len(new_messages)
        async with self._transaction(write=True) as conn:
            last = (
                await conn.execute(
                    update(sessions)
                    .where(sessions.c.tenant_id == tenant_id, sessions.c.id == session_id)
                    .values(message_count=sessions.c.message_count + count, update_time=now)
                    .returning(sessions.c.message_count)
                )
            ).scalar_one_or_none()
            if last is None:
                raise SessionNotFound(session_id)
            stored = [
                StoredMessage(sequence=last - count + index + 1, message=message, create_time=now)
                for index, message in enumerate(new_messages)
            ]
            if stored:
                await conn.execute(
                    insert(messages),
                    [
                        {
                            "tenant_id": tenant_id,
                            "session_id": session_id,
                            "seq": item.sequence,
                            "role": item.message.role,
                            "content": item.message.content,
                            "content_parts": item.message.content_parts,
                            "name": item.message.name,
                            "tool_calls": item.message.tool_calls,
                            "tool_call_id": item.message.tool_call_id,
                            "token_count": item.message.token_count,
                            "create_time": now,
                        }
                        for item in stored
                    ],
                )
        return stored
