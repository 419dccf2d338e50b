"""Sessions, current-session pointers and messages: every read and write of them.

Each public method is one transaction, run by `Database` in a worker thread. Database
failures surface as `StorageUnavailable`; ownership and existence problems as the domain
errors the RPC layer maps to statuses.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row

from memori_server.domain import Attribution
from memori_server.errors import AttributionMismatch, NoCurrentSession, SessionNotFound
from memori_server.storage.database import Database
from memori_server.storage.records import NewMessage, SessionRecord, StoredMessage
from memori_server.storage.tables import (
    completion_requests,
    current_sessions,
    messages,
    sessions,
)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SessionCursor:
    """Position after the last session of a page (keyset pagination)."""

    update_time: datetime
    session_id: str


def session_record(row: Row[Any]) -> SessionRecord:
    return SessionRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        attribution=Attribution(entity_id=row.entity_id, process_id=row.process_id),
        create_time=row.create_time,
        update_time=row.update_time,
        message_count=row.message_count,
    )


def stored_message(row: Row[Any]) -> StoredMessage:
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


def check_owner(row: Row[Any], attribution: Attribution | None) -> None:
    if attribution is not None and (
        row.entity_id != attribution.entity_id or row.process_id != attribution.process_id
    ):
        raise AttributionMismatch(row.id)


# Hot-path statements are built once: SQLAlchemy then reuses their cache key and compiled
# form, which costs more per call than the query itself on SQLite.
SESSION_BY_ID = select(sessions).where(
    sessions.c.tenant_id == bindparam("tenant_id"), sessions.c.id == bindparam("session_id")
)
CURRENT_SESSION = (
    select(sessions)
    .join(
        current_sessions,
        and_(
            current_sessions.c.tenant_id == sessions.c.tenant_id,
            current_sessions.c.session_id == sessions.c.id,
        ),
    )
    .where(
        current_sessions.c.tenant_id == bindparam("tenant_id"),
        current_sessions.c.entity_id == bindparam("entity_id"),
        current_sessions.c.process_id == bindparam("process_id"),
        sessions.c.update_time >= bindparam("active_since", type_=sessions.c.update_time.type),
    )
)


def _select_session(conn: Connection, tenant_id: str, session_id: str) -> Row[Any]:
    row = conn.execute(SESSION_BY_ID, {"tenant_id": tenant_id, "session_id": session_id}).first()
    if row is None:
        raise SessionNotFound(session_id)
    return row


def insert_session_if_absent(
    conn: Connection,
    dialect: Any,
    tenant_id: str,
    attribution: Attribution,
    session_id: str,
    now: datetime,
) -> bool:
    """Create the session unless the id exists in the tenant; True when it was created."""
    inserted = conn.execute(
        dialect.insert(sessions)
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
        .returning(sessions.c.id)  # rowcount is not reliable across drivers
    ).first()
    return inserted is not None


@functools.cache
def _current_pointer_upsert(dialect: Any) -> Any:
    """The upsert of a current-session pointer, built once per dialect module."""
    stmt = dialect.insert(current_sessions)
    return stmt.on_conflict_do_update(
        index_elements=["tenant_id", "entity_id", "process_id"],
        set_={"session_id": stmt.excluded.session_id},
    )


def make_current(
    conn: Connection, dialect: Any, tenant_id: str, attribution: Attribution, session_id: str
) -> None:
    """Point the attribution's current-session pointer at `session_id`."""
    conn.execute(
        _current_pointer_upsert(dialect),
        {
            "tenant_id": tenant_id,
            "entity_id": attribution.entity_id,
            "process_id": attribution.process_id,
            "session_id": session_id,
        },
    )


_COUNT_APPENDED = (
    update(sessions)
    .where(sessions.c.tenant_id == bindparam("b_tenant"), sessions.c.id == bindparam("b_session"))
    .values(
        message_count=sessions.c.message_count + bindparam("appended", type_=BigInteger()),
        update_time=bindparam("now", type_=sessions.c.update_time.type),
    )
    .returning(*sessions.c)
)
_INSERT_MESSAGE = insert(messages)


def append_rows(
    conn: Connection,
    tenant_id: str,
    session_id: str,
    new_messages: Sequence[NewMessage],
    now: datetime,
) -> tuple[Row[Any], list[StoredMessage]]:
    """Append messages with the session's next sequence numbers; returns (session row, stored).

    The counter update locks the session row until commit, so concurrent appends to one
    session queue up and the sequence stays gap-free and totally ordered.
    """
    count = len(new_messages)
    row = conn.execute(
        _COUNT_APPENDED,
        {"b_tenant": tenant_id, "b_session": session_id, "appended": count, "now": now},
    ).first()
    if row is None:
        raise SessionNotFound(session_id)
    last = row.message_count
    stored = [
        StoredMessage(sequence=last - count + index + 1, message=message, create_time=now)
        for index, message in enumerate(new_messages)
    ]
    if stored:
        conn.execute(
            _INSERT_MESSAGE,
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
    return row, stored


class SessionStore:
    def __init__(self, database: Database, clock: Callable[[], datetime] = utc_now) -> None:
        self._db = database
        self._clock = clock
        self._dialect = postgresql if database.dialect == "postgresql" else sqlite

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

        def work(conn: Connection) -> None:
            conn.execute(
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
            make_current(conn, self._dialect, tenant_id, attribution, record.id)

        await self._db.write(work, small=True)
        return record

    async def set(
        self, tenant_id: str, attribution: Attribution, session_id: str
    ) -> tuple[SessionRecord, bool]:
        """Resume (or create) a session and make it current; returns (session, created)."""
        now = self._clock()

        def work(conn: Connection) -> tuple[SessionRecord, bool]:
            inserted = insert_session_if_absent(
                conn, self._dialect, tenant_id, attribution, session_id, now
            )
            row = conn.execute(
                update(sessions)
                .where(
                    sessions.c.tenant_id == tenant_id,
                    sessions.c.id == session_id,
                    sessions.c.entity_id == attribution.entity_id,
                    sessions.c.process_id == attribution.process_id,
                )
                .values(update_time=now)
                .returning(*sessions.c)
            ).first()
            if row is None:
                raise AttributionMismatch(session_id)
            make_current(conn, self._dialect, tenant_id, attribution, session_id)
            return session_record(row), inserted

        return await self._db.write(work, small=True)

    async def get(
        self, tenant_id: str, session_id: str, attribution: Attribution | None = None
    ) -> SessionRecord:
        row = await self._db.fetch_one(
            SESSION_BY_ID, {"tenant_id": tenant_id, "session_id": session_id}
        )
        if row is None:
            raise SessionNotFound(session_id)
        check_owner(row, attribution)
        return session_record(row)

    async def get_current(
        self, tenant_id: str, attribution: Attribution, idle_seconds: float
    ) -> SessionRecord:
        """The attribution's current session if it was active within `idle_seconds`."""
        active_since = datetime.fromtimestamp(self._clock().timestamp() - idle_seconds, UTC)
        parameters = {
            "tenant_id": tenant_id,
            "entity_id": attribution.entity_id,
            "process_id": attribution.process_id,
            "active_since": active_since,
        }
        row = await self._db.fetch_one(CURRENT_SESSION, parameters)
        if row is None:
            raise NoCurrentSession(attribution.entity_id, attribution.process_id, idle_seconds)
        return session_record(row)

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
        rows = await self._db.read_autocommit(
            lambda conn: conn.execute(query.limit(limit + 1)).all()
        )
        return [session_record(row) for row in rows[:limit]], len(rows) > limit

    async def delete(
        self, tenant_id: str, session_id: str, attribution: Attribution | None = None
    ) -> int:
        """Delete a session, its messages and any pointer to it; returns the message count."""

        def work(conn: Connection) -> int:
            check_owner(_select_session(conn, tenant_id, session_id), attribution)
            deleted = conn.execute(
                delete(messages).where(
                    messages.c.tenant_id == tenant_id, messages.c.session_id == session_id
                )
            ).rowcount
            conn.execute(
                delete(completion_requests).where(
                    completion_requests.c.tenant_id == tenant_id,
                    completion_requests.c.session_id == session_id,
                )
            )
            conn.execute(
                delete(current_sessions).where(
                    current_sessions.c.tenant_id == tenant_id,
                    current_sessions.c.session_id == session_id,
                )
            )
            conn.execute(
                delete(sessions).where(
                    sessions.c.tenant_id == tenant_id, sessions.c.id == session_id
                )
            )
            return deleted

        return await self._db.write(work)

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

        def work(conn: Connection) -> list[Row[Any]]:
            check_owner(_select_session(conn, tenant_id, session_id), attribution)
            return list(
                conn.execute(
                    select(messages)
                    .where(
                        messages.c.tenant_id == tenant_id,
                        messages.c.session_id == session_id,
                        messages.c.seq > after_sequence,
                    )
                    .order_by(messages.c.seq)
                    .limit(limit + 1)
                ).all()
            )

        rows = await self._db.read(work)
        return [stored_message(row) for row in rows[:limit]], len(rows) > limit

    async def append_messages(
        self, tenant_id: str, session_id: str, new_messages: Sequence[NewMessage]
    ) -> list[StoredMessage]:
        """Append messages atomically with the next sequence numbers of the session."""
        now = self._clock()

        def work(conn: Connection) -> list[StoredMessage]:
            return append_rows(conn, tenant_id, session_id, new_messages, now)[1]

        return await self._db.write(work)
