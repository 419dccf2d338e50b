"""The two transactions of a chat call: read the session's context, then store the turn.

Nothing is written before the upstream has answered: a session that a call would create is
only created by the transaction that stores its turn, so a failed call leaves no trace.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, select, text
from sqlalchemy.dialects import postgresql, sqlite

from memori_server.domain import Attribution
from memori_server.errors import SessionNotFound
from memori_server.storage import pg_turns
from memori_server.storage.database import Database
from memori_server.storage.idempotency import mark_done
from memori_server.storage.point_reads import FastPathUnavailable
from memori_server.storage.records import (
    Completion,
    HistoryMessage,
    NewMessage,
    SessionRecord,
    openai_message,
)
from memori_server.storage.session_store import (
    CURRENT_SESSION,
    SESSION_BY_ID,
    append_rows,
    check_owner,
    insert_session_if_absent,
    make_current,
    session_record,
    utc_now,
)
from memori_server.storage.tables import current_sessions, messages, sessions

# A session by id, and whether it is already its attribution's current session (then the
# turn's transaction need not rewrite the pointer).
_SESSION_AND_POINTER = (
    select(*sessions.c, current_sessions.c.session_id.label("current_id"))
    .outerjoin(
        current_sessions,
        and_(
            current_sessions.c.tenant_id == sessions.c.tenant_id,
            current_sessions.c.entity_id == sessions.c.entity_id,
            current_sessions.c.process_id == sessions.c.process_id,
        ),
    )
    .where(sessions.c.tenant_id == bindparam("tenant_id"), sessions.c.id == bindparam("session_id"))
)
HISTORY_BATCH = 256
# Only the columns a history needs, read through the fast path (`Database.fetch_all`): no
# thread hand-off, and none of SQLAlchemy's per-row machinery, which cost four times the
# query itself for a few hundred messages.
_NEWEST_MESSAGES = (
    select(
        messages.c.seq,
        messages.c.role,
        messages.c.content,
        messages.c.content_parts,
        messages.c.name,
        messages.c.tool_calls,
        messages.c.tool_call_id,
        messages.c.token_count,
    )
    .where(
        messages.c.tenant_id == bindparam("tenant_id"),
        messages.c.session_id == bindparam("session_id"),
        messages.c.seq < bindparam("before", type_=messages.c.seq.type),
    )
    .order_by(messages.c.seq.desc())
    .limit(HISTORY_BATCH)
)


def _history_message(row: Any) -> HistoryMessage:
    _, role, content, parts, name, calls, call_id, tokens = row
    return HistoryMessage(openai_message(role, content, parts, name, calls, call_id), tokens)


HistorySteps = Generator[int, Sequence[Any], tuple[list[HistoryMessage], bool]]


def _history_steps(message_count: int, token_budget: int, min_messages: int) -> HistorySteps:
    """The history read without its I/O: yields the `before` sequence of each batch to
    read, receives the batch's rows, returns (messages oldest first, from the first one)."""
    newest_first: list[HistoryMessage] = []
    used = 0
    before = message_count + 1
    while before > 1 and (used <= token_budget or len(newest_first) < min_messages):
        rows = yield before
        if not rows:
            break
        for row in rows:
            item = _history_message(row)
            newest_first.append(item)
            used += item.token_count
            before = row[0]
            if used > token_budget and len(newest_first) >= min_messages:
                break
    newest_first.reverse()
    return newest_first, before <= 1


def _drive(
    steps: HistorySteps, read: Callable[[int], Sequence[Any]]
) -> tuple[list[HistoryMessage], bool]:
    """Run `steps` with a blocking `read` of the batch before a sequence number."""
    try:
        before = next(steps)
        while True:
            before = steps.send(read(before))
    except StopIteration as done:
        result: tuple[list[HistoryMessage], bool] = done.value
        return result


_ATTRIBUTION_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def _lock_key(tenant_id: str, attribution: Attribution) -> int:
    """A signed 64-bit advisory lock key for one attribution of one tenant."""
    name = "\0".join(("memori-current", tenant_id, attribution.entity_id, attribution.process_id))
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(frozen=True, slots=True)
class ChatContext:
    session_id: str
    record: SessionRecord | None
    """The session as loaded; None when the storing transaction is to create it."""
    from_current: bool
    """No session id was given: the attribution's current session (or a new one) is used."""
    is_current: bool
    """The session is the attribution's current session already."""
    history: list[HistoryMessage]
    """The newest stored messages: enough for the token budget and the resent-turn check."""
    from_session_start: bool
    """`history` begins with the session's first message."""


class TurnStore:
    def __init__(self, database: Database, clock: Callable[[], datetime] = utc_now) -> None:
        self._db = database
        self._clock = clock
        self._dialect: Any = postgresql if database.dialect == "postgresql" else sqlite

    async def load(
        self,
        tenant_id: str,
        attribution: Attribution,
        session_id: str | None,
        *,
        idle_seconds: float,
        token_budget: int,
        min_messages: int,
        inline: bool = True,
    ) -> ChatContext:
        """Resolve the session (never creating it) and read its recent history.

        Separate autocommit reads: a turn stored between them is only not seen yet.
        `inline=False` reads the history on the thread path (a large call).
        """
        if session_id is not None:
            row = await self._db.fetch_one(
                _SESSION_AND_POINTER, {"tenant_id": tenant_id, "session_id": session_id}
            )
            if row is not None:
                check_owner(row, attribution)
            is_current = row is not None and row.current_id == row.id
        else:
            row = await self._db.fetch_one(
                CURRENT_SESSION,
                {
                    "tenant_id": tenant_id,
                    "entity_id": attribution.entity_id,
                    "process_id": attribution.process_id,
                    "active_since": self._clock() - timedelta(seconds=idle_seconds),
                },
            )
            is_current = row is not None
        if row is None:
            return ChatContext(
                session_id=session_id or str(uuid.uuid4()),
                record=None,
                from_current=session_id is None,
                is_current=False,
                history=[],
                from_session_start=True,
            )
        history, from_start = await self._history(
            tenant_id, row.id, row.message_count, token_budget, min_messages, inline
        )
        return ChatContext(
            session_id=row.id,
            record=session_record(row),
            from_current=session_id is None,
            is_current=is_current,
            history=history,
            from_session_start=from_start,
        )

    async def _history(
        self,
        tenant_id: str,
        session_id: str,
        message_count: int,
        token_budget: int,
        min_messages: int,
        inline: bool,
    ) -> tuple[list[HistoryMessage], bool]:
        """Newest messages until the budget is exceeded and `min_messages` are loaded;
        returns them oldest first, and whether they start at the session's first message.

        Inline: batches through the fast read path, converted here. Otherwise the whole read
        and its conversion run on the thread path, so a large history never holds the loop.
        """
        key = {"tenant_id": tenant_id, "session_id": session_id}
        steps = _history_steps(message_count, token_budget, min_messages)
        if not inline:

            def read(conn: Connection) -> tuple[list[HistoryMessage], bool]:
                return _drive(
                    steps,
                    lambda before: conn.execute(_NEWEST_MESSAGES, {**key, "before": before}).all(),
                )

            return await self._db.read_autocommit(read)
        try:
            before = next(steps)
            while True:
                rows = await self._db.fetch_all(_NEWEST_MESSAGES, {**key, "before": before})
                before = steps.send(rows)
        except StopIteration as done:
            result: tuple[list[HistoryMessage], bool] = done.value
            return result

    def _ensure_session(
        self,
        conn: Connection,
        tenant_id: str,
        attribution: Attribution,
        context: ChatContext,
        idle_seconds: float,
        now: datetime,
    ) -> str:
        """The session to store into, created now when the call started a new one."""
        if context.record is not None:
            return context.session_id
        if context.from_current:
            # Another call of this attribution may have started a session meanwhile: join it
            # rather than fork the conversation. PostgreSQL needs a lock for that check to
            # see the other transaction; SQLite's writers are serialized already.
            if self._db.dialect == "postgresql":
                conn.execute(_ATTRIBUTION_LOCK, {"key": _lock_key(tenant_id, attribution)})
            current = conn.execute(
                CURRENT_SESSION,
                {
                    "tenant_id": tenant_id,
                    "entity_id": attribution.entity_id,
                    "process_id": attribution.process_id,
                    "active_since": now - timedelta(seconds=idle_seconds),
                },
            ).first()
            if current is not None:
                return str(current.id)
        insert_session_if_absent(
            conn, self._dialect, tenant_id, attribution, context.session_id, now
        )
        row = conn.execute(
            SESSION_BY_ID, {"tenant_id": tenant_id, "session_id": context.session_id}
        ).first()
        if row is None:  # deleted between the insert and this read: store nothing
            raise SessionNotFound(context.session_id)
        check_owner(row, attribution)
        return context.session_id

    async def store_turn(
        self,
        tenant_id: str,
        attribution: Attribution,
        context: ChatContext,
        turn: Sequence[NewMessage],
        *,
        idle_seconds: float,
        completion: Completion | None,
        inline: bool = True,
    ) -> SessionRecord:
        """One transaction: the session (if new), the turn's messages, the current-session
        pointer and the request id's stored result; returns the session after the turn.

        `inline=False`: a large turn, written on the thread path, never on the event loop.
        """
        now = self._clock()
        if context.record is not None and self._db.dialect == "postgresql" and inline:
            try:
                return await self._db.on_loop_postgres(
                    functools.partial(
                        pg_turns.store_turn,
                        tenant_id=tenant_id,
                        attribution=attribution,
                        session_id=context.session_id,
                        turn=turn,
                        now=now,
                        point_current=not context.is_current,
                        completion=completion,
                    )
                )
            except FastPathUnavailable:
                pass

        def work(conn: Connection) -> SessionRecord:
            target = self._ensure_session(conn, tenant_id, attribution, context, idle_seconds, now)
            row, _ = append_rows(conn, tenant_id, target, turn, now)
            if not (context.is_current and target == context.session_id):
                make_current(conn, self._dialect, tenant_id, attribution, target)
            if completion is not None:
                mark_done(
                    conn,
                    tenant_id,
                    completion.request_id,
                    target,
                    completion.response,
                    completion.expire_time(now),
                )
            return session_record(row)

        return await self._db.write(work, small=inline)


__all__ = ["ChatContext", "TurnStore"]
