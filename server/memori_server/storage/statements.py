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
    func,
    insert,
    or_,
    select,
    text,
    true,
    tuple_,
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
    encode_message,
    openai_message,
)
from memori_server.storage.tables import (
    UtcDateTime,
    completion_requests,
    current_sessions,
    entity_erasures,
    memory_passages,
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
_e = entity_erasures.c


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
    # Sequence numbers run 1..message_count without gaps: the newest N by key range. One
    # bound (SQLite's scalar max): with two, SQLite ranges the key on one and filters the
    # other, so a call with its window held walked that whole window to find no new row.
    _m.seq
    > func.max(
        _s.message_count - bindparam("window", type_=BigInteger()),
        bindparam("since", type_=BigInteger()),
    ),
)


def _message_insert(owned: Any) -> Any:
    """An insert of one message numbered from the counter of the session `owned` selects."""
    last_sequence = select(_s.message_count).where(owned).scalar_subquery()
    # inline: no RETURNING of the computed key, which executemany would only discard
    return (
        insert(messages)
        .inline()
        .values(
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
        # A session a chat turn creates: not for an entity erased since the call began.
        erased_since_start = and_(
            _e.tenant_id == _p("tenant_id"),
            _e.entity_id == _p("entity_id"),
            _e.erase_time >= _p("call_start", _e.erase_time),
        )
        erased_since = select(_e.entity_id).where(erased_since_start).exists()
        self.erased_since = c(select(_e.erase_time).where(erased_since_start))
        self.insert_turn_session = c(
            insert_for(sessions)
            .from_select(list(new_session), select(*new_session.values()).where(~erased_since))
            .on_conflict_do_nothing(index_elements=["tenant_id", "id"])
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
        self.delete_memories = c(
            delete(memory_passages).where(
                memory_passages.c.tenant_id == _p("tenant_id"),
                memory_passages.c.session_id == _p("session_id"),
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
        # Run after count_appended in the same transaction, which holds the session's row: the
        # message `back` places from the end of its turn. No session (deleted meanwhile, or
        # another attribution's): NULL, a constraint violation, and nothing is stored.
        self.insert_message = c(_message_insert(_owned()))
        # The same, for a call with a request id: also NULL unless this call still holds the
        # id's claim (a retry may take over a claim whose lease ran out).
        self.insert_claimed_message = c(
            _message_insert(
                and_(
                    _owned(),
                    select(_r.request_id)
                    .where(
                        _r.tenant_id == _p("tenant_id"),
                        _r.request_id == _p("request_id"),
                        _r.owner == _p("claim_owner"),
                    )
                    .exists(),
                )
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
        # attribution's current one, and the newest `window` messages after `since` (the
        # window held in memory ends there), newest first: one row per message, message
        # columns NULL when there is none.
        if dialect.name == "postgresql":
            # LATERAL + ORDER BY seq DESC LIMIT: the newest rows straight off the primary
            # key, whatever the planner's statistics say (a range join may be planned as a
            # scan of the whole session while statistics lag a bulk import).
            newest = (
                select(*_HISTORY_COLUMNS)
                .where(
                    _m.tenant_id == _s.tenant_id,
                    _m.session_id == _s.id,
                    _m.seq > bindparam("since", type_=BigInteger()),
                )
                .order_by(_m.seq.desc())
                .limit(bindparam("window", type_=BigInteger()))
                .lateral("newest")
            )
            history_columns = tuple(newest.c)
            by_id = sessions.outerjoin(current_sessions, _POINTER_OF_SESSION).outerjoin(
                newest, true()
            )
            via_pointer = current_sessions.join(
                sessions, and_(_c.tenant_id == _s.tenant_id, _c.session_id == _s.id)
            ).outerjoin(newest, true())
            newest_first = newest.c.seq.desc()
        else:
            # SQLite has no LATERAL; its planner takes the key range of the join as it is.
            history_columns = _HISTORY_COLUMNS
            by_id = sessions.outerjoin(current_sessions, _POINTER_OF_SESSION).outerjoin(
                messages, _HISTORY_WINDOW
            )
            via_pointer = current_sessions.join(
                sessions, and_(_c.tenant_id == _s.tenant_id, _c.session_id == _s.id)
            ).outerjoin(messages, _HISTORY_WINDOW)
            newest_first = _m.seq.desc()
        session_and_history = (*sessions.c, _c.session_id.label("current_id"), *history_columns)
        head = len(sessions.c) + 1  # the session and its pointer repeat in every row
        self.load_by_id = CompiledStatement(
            select(*session_and_history)
            .select_from(by_id)
            .where(_this_session())
            .order_by(newest_first),
            dialect,
            repeated_head=head,
        )
        self.load_current = CompiledStatement(
            select(*session_and_history)
            .select_from(via_pointer)
            .where(
                _c.tenant_id == _p("tenant_id"),
                _c.entity_id == _p("entity_id"),
                _c.process_id == _p("process_id"),
                _s.update_time >= _p("active_since", _s.update_time),
            )
            .order_by(newest_first),
            dialect,
            repeated_head=head,
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
                owner=_p("claim_owner"),
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
                owner=_p("claim_owner"),
            )
        )
        held = and_(this_request, _r.owner == _p("claim_owner"))
        self.release_claim = c(delete(completion_requests).where(held, _r.state == PENDING))
        self.mark_done = c(
            update(completion_requests)
            .where(held)
            .values(
                state=DONE,
                session_id=_p("session_id"),
                response=_p("response"),
                expire_time=_p("expire_time", _r.expire_time),
            )
        )
        # Expired records, a batch at a time: a purge never holds SQLite's lock for long.
        expired = (
            select(_r.tenant_id, _r.request_id)
            .where(_r.expire_time < _p("now", _r.expire_time))
            .limit(bindparam("limit", type_=Integer()))
        )
        self.purge_requests = c(
            delete(completion_requests).where(tuple_(_r.tenant_id, _r.request_id).in_(expired))
        )
        self.purge_erasures = c(
            delete(entity_erasures).where(_e.erase_time < _p("before", _e.erase_time))
        )
        # -- entities ------------------------------------------------------------------------
        of_entity = and_(_s.tenant_id == _p("tenant_id"), _s.entity_id == _p("entity_id"))
        entity_session_ids = select(_s.id).where(of_entity)
        self.erase_messages = c(
            delete(messages).where(
                _m.tenant_id == _p("tenant_id"), _m.session_id.in_(entity_session_ids)
            )
        )
        self.erase_requests = c(
            delete(completion_requests).where(
                _r.tenant_id == _p("tenant_id"), _r.session_id.in_(entity_session_ids)
            )
        )
        self.erase_pointers = c(
            delete(current_sessions).where(
                _c.tenant_id == _p("tenant_id"), _c.entity_id == _p("entity_id")
            )
        )
        self.erase_memories = c(
            delete(memory_passages).where(
                memory_passages.c.tenant_id == _p("tenant_id"),
                memory_passages.c.entity_id == _p("entity_id"),
            )
        )
        self.erase_sessions = c(delete(sessions).where(of_entity))
        # PostgreSQL: the erasure first locks the entity's sessions, so a turn storing into one
        # now finishes first (and its rows are then erased), and one that comes later finds
        # the session gone.
        self.lock_entity_sessions = c(select(_s.id).where(of_entity).with_for_update())
        erasure = insert_for(entity_erasures).values(
            tenant_id=_p("tenant_id"),
            entity_id=_p("entity_id"),
            erase_time=_p("now", _e.erase_time),
        )
        self.record_erasure = c(
            erasure.on_conflict_do_update(
                index_elements=["tenant_id", "entity_id"],
                set_={"erase_time": erasure.excluded.erase_time},
            )
        )
        self.entity_sessions_page = c(
            select(sessions)
            .where(
                of_entity,
                or_(
                    _s.create_time > _p("after_time", _s.create_time),
                    and_(
                        _s.create_time == _p("after_time", _s.create_time), _s.id > _p("after_id")
                    ),
                ),
            )
            .order_by(_s.create_time, _s.id)
            .limit(bindparam("limit", type_=Integer()))
        )
        # Held while erasing (exclusive) and while a chat turn creates a session (shared):
        # PostgreSQL then sees no turn create a session that the erasure's delete misses.
        self.entity_lock = c(
            text("SELECT pg_advisory_xact_lock(:key)").bindparams(
                bindparam("key", type_=BigInteger())
            )
        )
        self.entity_lock_shared = c(
            text("SELECT pg_advisory_xact_lock_shared(:key)").bindparams(
                bindparam("key", type_=BigInteger())
            )
        )
        # -- retention -----------------------------------------------------------------------
        self.idle_sessions = c(
            select(_s.tenant_id, _s.id)
            .where(_s.update_time < _p("cutoff", _s.update_time))
            .order_by(_s.update_time)
            .limit(bindparam("limit", type_=Integer()))
        )
        idle_session = select(sessions).where(
            _this_session(), _s.update_time < _p("cutoff", _s.update_time)
        )
        if dialect.name == "postgresql":
            idle_session = idle_session.with_for_update()  # a turn storing now must wait
        self.lock_idle_session = c(idle_session)


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
        row.role,
        encode_message(
            openai_message(
                row.role, row.content, row.content_parts, row.name, row.tool_calls, row.tool_call_id
            )
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
    "delete_session_ops",
    "history_message",
    "message_rows",
    "owner",
    "session_record",
    "stored_message",
]


def delete_session_ops(statements: Statements, key: dict[str, Any]) -> tuple[Op, ...]:
    """Delete the session of `key` (tenant_id, session_id) whole: its messages (the first
    result counts them), request records, memory passages, pointers, then the session row."""
    return (
        Op(statements.delete_messages, key, Fetch.ROWCOUNT),
        Op(statements.delete_requests, key),
        Op(statements.delete_memories, key),
        Op(statements.delete_pointers, key),
        Op(statements.delete_session, key),
    )


def append_ops(
    statements: Statements,
    key: dict[str, Any],
    turn: list[NewMessage],
    now: datetime,
    claim: tuple[str, str] | None = None,
    *,
    message_time: datetime | None = None,
) -> list[Op]:
    """Append `turn` to the session of `key` (owner parameters): the counter, then the
    messages numbered from it. A missing session (or another attribution's), or with `claim`
    (request id, owner token) a claim this call no longer holds, makes the message insert
    violate NOT NULL, so nothing is stored. The messages' create_time is `message_time`
    when given (an import keeps its dates), else `now`."""
    appended = Op(statements.count_appended, {**key, "appended": len(turn), "now": now}, Fetch.ONE)
    if not turn:
        return [appended]
    stamp = now if message_time is None else message_time
    if claim is None:
        return [appended, Op(statements.insert_message, message_rows(key, turn, stamp))]
    request_id, owner_token = claim
    claimed = {**key, "request_id": request_id, "claim_owner": owner_token}
    return [appended, Op(statements.insert_claimed_message, message_rows(claimed, turn, stamp))]
