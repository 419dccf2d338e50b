"""Every SQL statement the service runs, written once with SQLAlchemy Core, and the row mappers.

`Statements(dialect)` compiles them all once per dialect; the stores build units from them
and every driver runs the same compiled SQL. Sequence numbers are computed inside the
statements (the session's message counter, updated first in the same transaction, minus the
message's distance from the end of the turn), so no path numbers messages in Python.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from memori_server.domain import Attribution
from memori_server.storage.compiled import CompiledStatement
from memori_server.storage.records import (
    HistoryMessage,
    NewMessage,
    SessionRecord,
    StoredMessage,
    openai_message,
)
from memori_server.storage.tables import (
    UtcDateTime,
    completion_requests,
    current_sessions,
    messages,
    sessions,
)
from memori_server.storage.units import Fetch, Op

PENDING = "pending"
DONE = "done"
# List positions without a cursor or floor: before every real row, after every real row.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)

_TIME = UtcDateTime()
_s, _m, _c, _r = sessions.c, messages.c, current_sessions.c, completion_requests.c


def _p(name: str, like: Any = None) -> Any:
    """A bind parameter, typed like a column where its conversion matters."""
    return bindparam(name, type_=like.type if like is not None else None)


def _this_session() -> Any:
    return and_(_s.tenant_id == _p("tenant_id"), _s.id == _p("session_id"))


def _owned() -> Any:
    """The session of the parameters, when it belongs to the parameters' attribution."""
    return and_(_this_session(), _s.entity_id == _p("entity_id"), _s.process_id == _p("process_id"))


_HISTORY_COLUMNS = (
    _m.seq,
    _m.role,
    _m.content,
    _m.content_parts,
    _m.name,
    _m.tool_calls,
    _m.tool_call_id,
    _m.token_count,
)
_POINTER_OF_SESSION = and_(
    _c.tenant_id == _s.tenant_id, _c.entity_id == _s.entity_id, _c.process_id == _s.process_id
)
_HISTORY_WINDOW = and_(
    _m.tenant_id == _s.tenant_id,
    _m.session_id == _s.id,
    # Sequence numbers run 1..message_count without gaps: the newest N by key range.
    _m.seq > _s.message_count - bindparam("window", type_=BigInteger()),
)


class Statements:
    """The service's statements, compiled for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect.name
        insert_for = postgresql.insert if dialect.name == "postgresql" else sqlite.insert

        def c(statement: Any) -> CompiledStatement:
            return CompiledStatement(statement, dialect)

        self.ping = c(text("SELECT 1"))
        # -- sessions ------------------------------------------------------------------------
        self.session_by_id = c(select(sessions).where(_this_session()))
        self.current_session = c(
            select(sessions)
            .join(current_sessions, and_(_c.tenant_id == _s.tenant_id, _c.session_id == _s.id))
            .where(
                _c.tenant_id == _p("tenant_id"),
                _c.entity_id == _p("entity_id"),
                _c.process_id == _p("process_id"),
                _s.update_time >= _p("active_since", _s.update_time),
            )
        )
        new_session = {
            "tenant_id": _p("tenant_id"),
            "id": _p("session_id"),
            "entity_id": _p("entity_id"),
            "process_id": _p("process_id"),
            "create_time": _p("now", _s.create_time),
            "update_time": _p("now", _s.update_time),
            "message_count": 0,
        }
        self.insert_session = c(insert(sessions).values(new_session))
        self.insert_session_if_absent = c(
            insert_for(sessions)
            .values(new_session)
            .on_conflict_do_nothing(index_elements=["tenant_id", "id"])
            .returning(_s.id)  # rowcount is not reliable across drivers
        )
        self.touch_session = c(
            update(sessions)
            .where(_owned())
            .values(update_time=_p("now", _s.update_time))
            .returning(*sessions.c)
        )
        pointer = insert_for(current_sessions).from_select(
            ["tenant_id", "entity_id", "process_id", "session_id"],
            select(_s.tenant_id, _s.entity_id, _s.process_id, _s.id).where(_owned()),
        )
        # The attribution's current session becomes this one, if the attribution owns it.
        self.point_current = c(
            pointer.on_conflict_do_update(
                index_elements=["tenant_id", "entity_id", "process_id"],
                set_={"session_id": pointer.excluded.session_id},
            )
        )
        self.list_sessions = c(
            select(sessions)
            .where(
                _s.tenant_id == _p("tenant_id"),
                _s.entity_id == _p("entity_id"),
                _s.process_id == _p("process_id"),
                _s.update_time >= _p("floor", _s.update_time),
                or_(
                    _s.update_time < _p("after_time", _s.update_time),
                    and_(
                        _s.update_time == _p("after_time", _s.update_time), _s.id < _p("after_id")
                    ),
                ),
            )
            .order_by(_s.update_time.desc(), _s.id.desc())
            .limit(bindparam("limit", type_=Integer()))
        )
        self.delete_messages = c(
            delete(messages).where(
                _m.tenant_id == _p("tenant_id"), _m.session_id == _p("session_id")
            )
        )
        self.delete_requests = c(
            delete(completion_requests).where(
                _r.tenant_id == _p("tenant_id"), _r.session_id == _p("session_id")
            )
        )
        self.delete_pointers = c(
            delete(current_sessions).where(
                _c.tenant_id == _p("tenant_id"), _c.session_id == _p("session_id")
            )
        )
        self.delete_session = c(delete(sessions).where(_this_session()))
        # -- messages ------------------------------------------------------------------------
        self.count_appended = c(
            update(sessions)
            .where(_owned())
            .values(
                message_count=_s.message_count + bindparam("appended", type_=BigInteger()),
                update_time=_p("now", _s.update_time),
            )
            .returning(*sessions.c)
        )
        last_sequence = select(_s.message_count).where(_owned()).scalar_subquery()
        # Run after count_appended in the same transaction, which holds the session's row: the
        # message `back` places from the end of its turn. No session (deleted meanwhile, or
        # another attribution's): NULL, a constraint violation, and nothing is stored.
        self.insert_message = c(
            insert(messages).values(
                tenant_id=_p("tenant_id"),
                session_id=_p("session_id"),
                seq=last_sequence - bindparam("back", type_=BigInteger()),
                role=_p("role"),
                content=_p("content", _m.content),
                content_parts=_p("content_parts", _m.content_parts),
                name=_p("name"),
                tool_calls=_p("tool_calls", _m.tool_calls),
                tool_call_id=_p("tool_call_id"),
                token_count=_p("token_count"),
                create_time=_p("now", _m.create_time),
            )
        )
        self.messages_page = c(
            select(messages)
            .where(
                _m.tenant_id == _p("tenant_id"),
                _m.session_id == _p("session_id"),
                _m.seq > bindparam("after", type_=BigInteger()),
            )
            .order_by(_m.seq)
            .limit(bindparam("limit", type_=Integer()))
        )
        self.history_before = c(
            select(*_HISTORY_COLUMNS)
            .where(
                _m.tenant_id == _p("tenant_id"),
                _m.session_id == _p("session_id"),
                _m.seq < bindparam("before", type_=BigInteger()),
            )
            .order_by(_m.seq.desc())
            .limit(bindparam("limit", type_=Integer()))
        )
        # A chat call's whole read in one statement: the session, whether it is its
        # attribution's current one, and the newest `window` messages, newest first (one row
        # per message; message columns NULL for an empty session).
        self.load_by_id = c(
            select(*sessions.c, _c.session_id.label("current_id"), *_HISTORY_COLUMNS)
            .select_from(
                sessions.outerjoin(current_sessions, _POINTER_OF_SESSION).outerjoin(
                    messages, _HISTORY_WINDOW
                )
            )
            .where(_this_session())
            .order_by(_m.seq.desc())
        )
        self.load_current = c(
            select(*sessions.c, _c.session_id.label("current_id"), *_HISTORY_COLUMNS)
            .select_from(
                current_sessions.join(
                    sessions, and_(_c.tenant_id == _s.tenant_id, _c.session_id == _s.id)
                ).outerjoin(messages, _HISTORY_WINDOW)
            )
            .where(
                _c.tenant_id == _p("tenant_id"),
                _c.entity_id == _p("entity_id"),
                _c.process_id == _p("process_id"),
                _s.update_time >= _p("active_since", _s.update_time),
            )
            .order_by(_m.seq.desc())
        )
        self.attribution_lock = c(
            text("SELECT pg_advisory_xact_lock(:key)").bindparams(
                bindparam("key", type_=BigInteger())
            )
        )
        # -- idempotency records -------------------------------------------------------------
        self.claim_new = c(
            insert_for(completion_requests)
            .values(
                tenant_id=_p("tenant_id"),
                request_id=_p("request_id"),
                kind=_p("kind"),
                fingerprint=_p("fingerprint"),
                state=PENDING,
                create_time=_p("now", _r.create_time),
                expire_time=_p("expire_time", _r.expire_time),
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "request_id"])
            # Whether it inserted is told by the row it returns (rowcount is unreliable here).
            .returning(_r.request_id)
        )
        this_request = and_(_r.tenant_id == _p("tenant_id"), _r.request_id == _p("request_id"))
        claim_row = select(completion_requests).where(this_request)
        if dialect.name == "postgresql":
            claim_row = claim_row.with_for_update()
        self.claim_row = c(claim_row)
        self.take_over_claim = c(
            update(completion_requests)
            .where(this_request)
            .values(
                kind=_p("kind"),
                fingerprint=_p("fingerprint"),
                state=PENDING,
                session_id=None,
                response=None,
                create_time=_p("now", _r.create_time),
                expire_time=_p("expire_time", _r.expire_time),
            )
        )
        self.release_claim = c(delete(completion_requests).where(this_request, _r.state == PENDING))
        self.mark_done = c(
            update(completion_requests)
            .where(this_request)
            .values(
                state=DONE,
                session_id=_p("session_id"),
                response=_p("response"),
                expire_time=_p("expire_time", _r.expire_time),
            )
        )
        self.purge_requests = c(
            delete(completion_requests).where(_r.expire_time < _p("now", _r.expire_time))
        )


# -- parameters and rows -------------------------------------------------------------------


def owner(tenant_id: str, session_id: str, attribution: Attribution) -> dict[str, Any]:
    """The parameters naming a session and the attribution that must own it."""
    return {
        "tenant_id": tenant_id,
        "session_id": session_id,
        "entity_id": attribution.entity_id,
        "process_id": attribution.process_id,
    }


def message_rows(
    key: dict[str, Any], turn: list[NewMessage], now: datetime
) -> list[dict[str, Any]]:
    """insert_message's parameter sets for a turn: each message's place from the end."""
    return [
        {
            **key,
            "back": len(turn) - 1 - index,
            "role": message.role,
            "content": message.content,
            "content_parts": message.content_parts,
            "name": message.name,
            "tool_calls": message.tool_calls,
            "tool_call_id": message.tool_call_id,
            "token_count": message.token_count,
            "now": now,
        }
        for index, message in enumerate(turn)
    ]


def session_record(row: Any) -> SessionRecord:
    """The one place a row of `sessions` becomes a SessionRecord."""
    return SessionRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        attribution=Attribution(entity_id=row.entity_id, process_id=row.process_id),
        create_time=row.create_time,
        update_time=row.update_time,
        message_count=row.message_count,
    )


def stored_message(row: Any) -> StoredMessage:
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


def history_message(row: Any) -> HistoryMessage:
    """A message as the upstream gets it, from a row with the history columns."""
    return HistoryMessage(
        openai_message(
            row.role, row.content, row.content_parts, row.name, row.tool_calls, row.tool_call_id
        ),
        row.token_count,
    )


__all__ = [
    "DONE",
    "EARLIEST",
    "LATEST",
    "PENDING",
    "Statements",
    "append_ops",
    "history_message",
    "message_rows",
    "owner",
    "session_record",
    "stored_message",
]


def append_ops(
    statements: Statements,
    key: dict[str, Any],
    turn: list[NewMessage],
    now: datetime,
) -> list[Op]:
    """Append `turn` to the session of `key` (owner parameters): the counter, then the
    messages numbered from it. A missing session (or another attribution's) makes the
    message insert violate NOT NULL, so nothing is stored."""
    appended = Op(statements.count_appended, {**key, "appended": len(turn), "now": now}, Fetch.ONE)
    if not turn:
        return [appended]
    return [appended, Op(statements.insert_message, message_rows(key, turn, now))]
