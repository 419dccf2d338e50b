"""A chat turn on PostgreSQL in one pipelined round trip, on the event loop.

Through SQLAlchemy in a worker thread a turn costs a thread hand-off and a round trip per
statement (BEGIN, the counter update, the messages, the pointer, COMMIT). Here the same
statements go through psycopg's async pool in pipeline mode: sent together, one round trip
and the commit. Each message takes its sequence number from the session's counter inside
the statement (the counter update before it holds the row lock), so no statement waits for
another's result. Used for turns of sessions that exist; creating one stays on the thread
path, with its lock and checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Json

from memori_server.domain import Attribution
from memori_server.errors import SessionNotFound
from memori_server.storage.records import Completion, NewMessage, SessionRecord

# The SQL of session_store.append_rows, make_current and idempotency.mark_done, for psycopg.
_COUNT = (
    "UPDATE sessions SET message_count = message_count + %(count)s, update_time = %(now)s "
    "WHERE tenant_id = %(tenant)s AND id = %(session)s "
    "RETURNING id, tenant_id, entity_id, process_id, create_time, update_time, message_count"
)
_MESSAGE = (
    "INSERT INTO messages (tenant_id, session_id, seq, role, content, content_parts, name, "
    "tool_calls, tool_call_id, token_count, create_time) VALUES (%(tenant)s::text, "
    "%(session)s::text, (SELECT message_count FROM sessions "
    "WHERE tenant_id = %(tenant)s::text AND id = %(session)s::text) "
    "- %(back)s, %(role)s, %(content)s, %(parts)s, %(name)s, %(calls)s, %(call_id)s, "
    "%(tokens)s, %(now)s)"
)
_CURRENT = (
    "INSERT INTO current_sessions (tenant_id, entity_id, process_id, session_id) "
    "VALUES (%(tenant)s, %(entity)s, %(process)s, %(session)s) "
    "ON CONFLICT (tenant_id, entity_id, process_id) DO UPDATE SET session_id = "
    "excluded.session_id"
)
_DONE = (
    "UPDATE completion_requests SET state = 'done', session_id = %(session)s, "
    "response = %(response)s, expire_time = %(expire)s "
    "WHERE tenant_id = %(tenant)s AND request_id = %(request_id)s"
)


def _json(value: Any) -> Json | None:
    return None if value is None else Json(value)


async def store_turn(
    connection: psycopg.AsyncConnection[Any],
    tenant_id: str,
    attribution: Attribution,
    session_id: str,
    turn: Sequence[NewMessage],
    now: datetime,
    *,
    point_current: bool,
    completion: Completion | None,
) -> SessionRecord:
    """Append `turn` to an existing session in one transaction; SessionNotFound if it is
    gone (then nothing is stored: its messages would have no sequence number)."""
    key = {"tenant": tenant_id, "session": session_id, "now": now}
    rows = [
        {
            **key,
            "back": len(turn) - 1 - index,
            "role": message.role,
            "content": message.content,
            "parts": _json(message.content_parts),
            "name": message.name,
            "calls": _json(message.tool_calls),
            "call_id": message.tool_call_id,
            "tokens": message.token_count,
        }
        for index, message in enumerate(turn)
    ]
    try:
        async with connection.pipeline(), connection.transaction():
            counted = await connection.execute(_COUNT, {**key, "count": len(turn)})
            if rows:
                async with connection.cursor() as cursor:
                    await cursor.executemany(_MESSAGE, rows)
            if point_current:
                await connection.execute(
                    _CURRENT,
                    {
                        **key,
                        "entity": attribution.entity_id,
                        "process": attribution.process_id,
                    },
                )
            if completion is not None:
                await connection.execute(
                    _DONE,
                    {
                        **key,
                        "response": completion.response,
                        "expire": completion.expire_time(now),
                        "request_id": completion.request_id,
                    },
                )
        row = await counted.fetchone()
    except psycopg.errors.NotNullViolation as error:  # no session row: no sequence number
        raise SessionNotFound(session_id) from error
    if row is None:
        raise SessionNotFound(session_id)
    return SessionRecord(
        id=row[0],
        tenant_id=row[1],
        attribution=Attribution(entity_id=row[2], process_id=row[3]),
        create_time=row[4],
        update_time=row[5],
        message_count=row[6],
    )
