"""A chat call's two units of storage work: read the session's context, then store the turn.

Nothing is written before the upstream has answered: a session that a call would create is
only created by the unit that stores its turn, so a failed call leaves no trace. On
PostgreSQL each is one round trip for an existing session: one statement reads the session,
its pointer and its newest messages; one pipelined transaction stores the messages, moves
the pointer and marks the request id done.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from memori_server.domain import Attribution
from memori_server.errors import EntityErased, RequestIdTakenOver, SessionNotFound
from memori_server.storage import statements as sql
from memori_server.storage.database import Database
from memori_server.storage.records import Completion, HistoryMessage, NewMessage, SessionRecord
from memori_server.storage.session_store import check_owner, utc_now
from memori_server.storage.units import ConstraintViolation, Fetch, Op, Unit, Work, ops

HISTORY_BATCH = 256
# The first read guesses how many messages the token budget holds (chat messages rarely
# average under 16 tokens), so one round trip usually reads the whole window.
TOKENS_PER_MESSAGE_GUESS = 16
MAX_FIRST_WINDOW = 1024


def _lock_key(*names: str) -> int:
    """A signed 64-bit advisory lock key for a name."""
    digest = hashlib.blake2b("\0".join(names).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _attribution_lock_key(tenant_id: str, attribution: Attribution) -> int:
    return _lock_key("memori-current", tenant_id, attribution.entity_id, attribution.process_id)


def entity_lock_key(tenant_id: str, entity_id: str) -> int:
    """The lock an erasure holds exclusively and a turn creating a session shares."""
    return _lock_key("memori-entity", tenant_id, entity_id)


@dataclass(frozen=True, slots=True)
class LoadedSession:
    """What a chat call knows of its session before the upstream call."""

    session_id: str
    record: SessionRecord | None
    """The session as loaded; None when the storing unit is to create it."""
    from_current: bool
    """No session id was given: the attribution's current session (or a new one) is used."""
    is_current: bool
    """The session is the attribution's current session already."""
    history: list[HistoryMessage]
    """The newest stored messages: enough for the token budget and the resent-turn check."""
    from_session_start: bool
    """`history` begins with the session's first message."""
    call_start: datetime
    """When the call read its context: an erasure of the entity after it voids the turn."""


class TurnStore:
    def __init__(self, database: Database, clock: Callable[[], datetime] = utc_now) -> None:
        self._db = database
        self._sql = database.statements
        self._clock = clock

    async def load(
        self,
        tenant_id: str,
        attribution: Attribution,
        session_id: str | None,
        *,
        idle_seconds: float,
        token_budget: int,
        min_messages: int,
        heavy: bool = False,
    ) -> LoadedSession:
        """Resolve the session (never creating it) and read its newest history: the session
        row, its pointer and the first window of messages in one statement, more history
        only when the window did not reach the budget. Each statement stands alone: a turn
        stored meanwhile is only not seen yet."""
        window = {
            "window": max(
                min(token_budget // TOKENS_PER_MESSAGE_GUESS + 1, MAX_FIRST_WINDOW),
                min_messages + 1,
            )
        }
        call_start = self._clock()

        def unit() -> Unit[LoadedSession]:
            if session_id is not None:
                (rows,) = yield ops(
                    Op(
                        self._sql.load_by_id,
                        {"tenant_id": tenant_id, "session_id": session_id, **window},
                        Fetch.ALL,
                    ),
                    commit=True,
                )
            else:
                (rows,) = yield ops(
                    Op(
                        self._sql.load_current,
                        {
                            "tenant_id": tenant_id,
                            "entity_id": attribution.entity_id,
                            "process_id": attribution.process_id,
                            "active_since": call_start - timedelta(seconds=idle_seconds),
                            **window,
                        },
                        Fetch.ALL,
                    ),
                    commit=True,
                )
            if not rows:
                return LoadedSession(
                    session_id=session_id or str(uuid.uuid4()),
                    record=None,
                    from_current=session_id is None,
                    is_current=False,
                    history=[],
                    from_session_start=True,
                    call_start=call_start,
                )
            head = rows[0]
            check_owner(head, attribution)
            history, from_start = yield from self._history(
                tenant_id,
                head,
                [row for row in rows if row.seq is not None],
                token_budget,
                min_messages,
            )
            return LoadedSession(
                session_id=head.id,
                record=sql.session_record(head),
                from_current=session_id is None,
                is_current=head.current_id == head.id,
                history=history,
                from_session_start=from_start,
                call_start=call_start,
            )

        return await self._db.run(Work(unit, writes=False, heavy=heavy))

    def _history(
        self,
        tenant_id: str,
        session: Any,
        first: Sequence[Any],
        token_budget: int,
        min_messages: int,
    ) -> Unit[tuple[list[HistoryMessage], bool]]:
        """Newest messages until the budget is exceeded and `min_messages` are loaded,
        starting with `first` (newest first), reading older batches as needed; returns them
        oldest first, and whether they start at the session's first message."""
        newest_first: list[HistoryMessage] = []
        used = 0
        before = session.message_count + 1
        rows = first
        while rows:
            for row in rows:
                item = sql.history_message(row)
                newest_first.append(item)
                used += item.token_count
                before = row.seq
                if used > token_budget and len(newest_first) >= min_messages:
                    rows = []
                    break
            else:
                if before <= 1:
                    break
                (rows,) = yield ops(
                    Op(
                        self._sql.history_before,
                        {
                            "tenant_id": tenant_id,
                            "session_id": session.id,
                            "before": before,
                            "limit": HISTORY_BATCH,
                        },
                        Fetch.ALL,
                    ),
                    commit=True,
                )
        newest_first.reverse()
        return newest_first, before <= 1

    async def store_turn(
        self,
        tenant_id: str,
        attribution: Attribution,
        loaded: LoadedSession,
        turn: Sequence[NewMessage],
        *,
        idle_seconds: float,
        completion: Completion | None,
        heavy: bool = False,
    ) -> SessionRecord:
        """One transaction: the session (if new), the turn's messages, the current-session
        pointer and the request id's stored result; returns the session after the turn."""
        now = self._clock()
        messages = list(turn)

        def unit() -> Unit[SessionRecord]:
            target = loaded.session_id
            creating = loaded.record is None
            if creating and loaded.from_current:
                joined = yield from self._joined_current(tenant_id, attribution, now, idle_seconds)
                target = joined or target
                creating = joined is None
            key = sql.owner(tenant_id, target, attribution)
            writes: list[Op] = []
            if creating:
                if self._db.dialect == "postgresql":  # an erasure running now must see it
                    lock = {"key": entity_lock_key(tenant_id, attribution.entity_id)}
                    writes.append(Op(self._sql.entity_lock_shared, lock))
                writes.append(
                    Op(
                        self._sql.insert_turn_session,
                        {**key, "now": now, "call_start": loaded.call_start},
                    )
                )
            counted_at = len(writes)
            claim = (completion.request_id, completion.owner) if completion else None
            writes += sql.append_ops(self._sql, key, messages, now, claim)
            if not (loaded.is_current and target == loaded.session_id):
                writes.append(Op(self._sql.point_current, key))
            if completion is not None:
                writes.append(
                    Op(
                        self._sql.mark_done,
                        {
                            "tenant_id": tenant_id,
                            "request_id": completion.request_id,
                            "claim_owner": completion.owner,
                            "session_id": target,
                            "response": completion.response,
                            "expire_time": completion.expire_time(now),
                        },
                    )
                )
            try:
                results = yield ops(*writes, commit=True)
            except ConstraintViolation:
                # Nothing was stored: find out why, and say so.
                yield from self._refusal(tenant_id, attribution, target, loaded, completion)
                raise AssertionError("unreachable: _refusal raises") from None
            return sql.session_record(results[counted_at])

        return await self._db.run(Work(unit, writes=True, heavy=heavy))

    def _refusal(
        self,
        tenant_id: str,
        attribution: Attribution,
        target: str,
        loaded: LoadedSession,
        completion: Completion | None,
    ) -> Unit[None]:
        """Why a turn's messages had no sequence number: always raises the domain error."""
        checks = [
            Op(self._sql.session_by_id, {"tenant_id": tenant_id, "session_id": target}, Fetch.ONE),
            Op(
                self._sql.erased_since,
                {
                    "tenant_id": tenant_id,
                    "entity_id": attribution.entity_id,
                    "call_start": loaded.call_start,
                },
                Fetch.ONE,
            ),
        ]
        if completion is not None:
            request = {"tenant_id": tenant_id, "request_id": completion.request_id}
            checks.append(Op(self._sql.claim_row, request, Fetch.ONE))
        session, erasure, *claim = yield ops(*checks, commit=True)
        if erasure is not None:
            raise EntityErased(attribution.entity_id)
        if completion is not None and (
            not claim or claim[0] is None or claim[0].owner != completion.owner
        ):
            raise RequestIdTakenOver(completion.request_id)
        if session is not None:
            check_owner(session, attribution)  # another attribution's session under this id
        raise SessionNotFound(target)

    def _joined_current(
        self, tenant_id: str, attribution: Attribution, now: datetime, idle_seconds: float
    ) -> Unit[str | None]:
        """The current session another call of this attribution started meanwhile, if any.

        Joining it rather than forking the conversation needs the check to see the other
        transaction: PostgreSQL takes a per-attribution lock first; SQLite's writers are
        serialized already (the write lock is held from the unit's start).
        """
        checks: list[Op] = []
        if self._db.dialect == "postgresql":
            checks.append(
                Op(
                    self._sql.attribution_lock,
                    {"key": _attribution_lock_key(tenant_id, attribution)},
                )
            )
        checks.append(
            Op(
                self._sql.current_session,
                {
                    "tenant_id": tenant_id,
                    "entity_id": attribution.entity_id,
                    "process_id": attribution.process_id,
                    "active_since": now - timedelta(seconds=idle_seconds),
                },
                Fetch.ONE,
            )
        )
        *_, current = yield ops(*checks)
        return None if current is None else str(current.id)


__all__ = ["LoadedSession", "TurnStore"]
