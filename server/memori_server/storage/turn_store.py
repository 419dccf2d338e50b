"""A chat call's two units of storage work: read the session's context, then store the turn.

Nothing is written before the upstream has answered: a session that a call would create is
only created by the unit that stores its turn, so a failed call leaves no trace. On
PostgreSQL each is one round trip for an existing session: one statement reads the session,
its pointer and its newest messages; one pipelined transaction stores the messages, moves
the pointer and marks the request id done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from memori_server.domain import Attribution
from memori_server.errors import EntityErased, RequestIdTakenOver, SessionNotFound
from memori_server.storage import statements as sql
from memori_server.storage.history_cache import HistoryWindow
from memori_server.storage.idempotency import Claim, Claiming, ClaimState
from memori_server.storage.records import (
    Completion,
    HistoryMessage,
    NewMessage,
    SessionRecord,
    as_history,
)
from memori_server.storage.session_store import check_owner
from memori_server.storage.store import Store
from memori_server.storage.units import (
    ConstraintViolation,
    Fetch,
    Op,
    Unit,
    Work,
    ops,
    together,
)

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
    history: Sequence[HistoryMessage]
    """The newest stored messages: enough for the token budget and the resent-turn check."""
    from_session_start: bool
    """`history` begins with the session's first message."""
    call_start: datetime
    """When the call read its context: an erasure of the entity after it voids the turn."""
    token_budget: int = 0
    min_messages: int = 0
    """The window this call needed: a stored turn extends the window held by the same rule."""
    held_stale: bool = False
    """A window was held for the session, but the session had changed under it."""
    history_tokens: int | None = None
    """The sum of `history`'s tokens, when known (trimming it to the budget then costs what
    it trims, not the window's length)."""


def _continues(held: HistoryWindow, head: Any) -> bool:
    """Whether the session row `head` is the session `held` was read from, at or past it."""
    return bool(
        head.id == held.session_id
        and head.create_time == held.create_time
        and head.message_count >= held.through
    )


class TurnStore(Store):
    on_stored: Callable[[], None] | None = None
    """Told after each stored turn (long-term memory's indexer looks at once)."""

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
        row, its pointer and the messages after the window held in memory (all of the first
        window when none is held) in one statement; more history only when that did not
        reach the budget. Each statement stands alone: a turn stored meanwhile is only not
        seen yet."""
        held, unit = self._loading(
            tenant_id,
            attribution,
            session_id,
            idle_seconds=idle_seconds,
            token_budget=token_budget,
            min_messages=min_messages,
        )
        loaded = await self._db.run(Work(unit, writes=False, heavy=heavy))
        self._remember(tenant_id, attribution, session_id, held, loaded)
        return loaded

    async def claim_and_load(
        self,
        claiming: Claiming,
        tenant_id: str,
        attribution: Attribution,
        session_id: str | None,
        *,
        idle_seconds: float,
        token_budget: int,
        min_messages: int,
        heavy: bool = False,
    ) -> tuple[Claim, LoadedSession | None]:
        """A request id's claim (`IdempotencyStore.claiming`) and, when the claim is this
        call's, what `load` returns, as one unit: a call runs two units (this, then its
        turn), not three. On PostgreSQL their first statements go in one round trip. On
        SQLite the unit runs on the write connection, which the claim needs anyway: its
        page cache outlives its own commits, where the reader's is dropped at every commit.
        The load may see turns of other calls that run in the same open transaction, before
        their commit: what those calls are about to be told is stored."""
        window: dict[str, Any] = {
            "idle_seconds": idle_seconds,
            "token_budget": token_budget,
            "min_messages": min_messages,
        }
        held, loading = self._loading(tenant_id, attribution, session_id, **window)
        claim, loaded = await self._db.run(
            Work(
                lambda: together(claiming.start(), loading()),
                writes=True,
                heavy=heavy,
                durable=False,
            )
        )
        self._remember(tenant_id, attribution, session_id, held, loaded)
        return claim, loaded if claim.state is ClaimState.CLAIMED else None

    def _loading(
        self,
        tenant_id: str,
        attribution: Attribution,
        session_id: str | None,
        *,
        idle_seconds: float,
        token_budget: int,
        min_messages: int,
    ) -> tuple[HistoryWindow | None, Callable[[], Unit[LoadedSession]]]:
        """The window held for the session, and the unit of `load` that starts from it."""
        window = max(
            min(token_budget // TOKENS_PER_MESSAGE_GUESS + 1, MAX_FIRST_WINDOW), min_messages + 1
        )
        call_start = self._clock()
        held = None
        if self._cache is not None:
            held = self._cache.lookup(tenant_id, session_id, attribution)

        def read(since: int) -> Unit[list[Any]]:
            parameters: dict[str, Any] = {"tenant_id": tenant_id, "window": window, "since": since}
            if session_id is not None:
                statement = self._sql.load_by_id
                parameters["session_id"] = session_id
            else:
                statement = self._sql.load_current
                parameters |= {
                    "entity_id": attribution.entity_id,
                    "process_id": attribution.process_id,
                    "active_since": call_start - timedelta(seconds=idle_seconds),
                }
            (rows,) = yield ops(Op(statement, parameters, Fetch.ALL), commit=True)
            return list(rows)

        def unit() -> Unit[LoadedSession]:
            known = held
            rows = yield from read(known.through if known else 0)
            if rows and known is not None and not _continues(known, rows[0]):
                # Not the session held (the pointer moved, or it was deleted and created
                # again): the rows after the held window say nothing; read them all.
                known = None
                rows = yield from read(0)
            if not rows:
                return LoadedSession(
                    session_id=session_id or str(uuid.uuid4()),
                    record=None,
                    from_current=session_id is None,
                    is_current=False,
                    history=[],
                    from_session_start=True,
                    call_start=call_start,
                    token_budget=token_budget,
                    min_messages=min_messages,
                )
            head = rows[0]
            check_owner(head, attribution)
            fresh = [sql.history_message(row) for row in rows if row.seq is not None]
            if known is not None and not fresh and known.covers(token_budget, min_messages):
                history: Sequence[HistoryMessage] = known.messages  # nothing new: as held
                from_start = known.from_session_start
                tokens = known.tokens
            else:
                newest_first = fresh
                if known is not None and len(fresh) == head.message_count - known.through:
                    newest_first += reversed(known.messages)  # the held window continues
                history, from_start, tokens = yield from self._history(
                    tenant_id, head, newest_first, token_budget, min_messages
                )
            return LoadedSession(
                session_id=head.id,
                record=sql.session_record(head),
                from_current=session_id is None,
                is_current=head.current_id == head.id,
                history=history,
                from_session_start=from_start,
                call_start=call_start,
                token_budget=token_budget,
                min_messages=min_messages,
                held_stale=held is not None and known is None,
                history_tokens=tokens,
            )

        return held, unit

    def _remember(
        self,
        tenant_id: str,
        attribution: Attribution,
        session_id: str | None,
        held: HistoryWindow | None,
        loaded: LoadedSession,
    ) -> None:
        """Hold the window a load read (on the event loop, after the unit ran), when windows
        are held."""
        if self._cache is None:
            return
        if loaded.held_stale:
            self._cache.stale()
        record = loaded.record
        if record is None:
            if session_id is not None:  # deleted (maybe by another process)
                self._cache.forget_session(tenant_id, session_id)
            return
        if held is not None and loaded.history is held.messages:
            return  # the window as held
        self._cache.keep(
            tenant_id,
            HistoryWindow.of(
                record.id, record.create_time, attribution, record.message_count, loaded.history
            ),
        )

    def _history(
        self,
        tenant_id: str,
        session: Any,
        newest_first: Sequence[HistoryMessage],
        token_budget: int,
        min_messages: int,
    ) -> Unit[tuple[list[HistoryMessage], bool, int]]:
        """The newest messages until the budget is exceeded and `min_messages` are taken:
        `newest_first` (the session's newest, without gaps), then older batches as needed.
        Returns them oldest first, whether they start at the session's first message, and
        their tokens."""
        taken: list[HistoryMessage] = []
        used = 0
        batch: Sequence[HistoryMessage] = newest_first
        while True:
            for item in batch:
                taken.append(item)
                used += item.token_count
                if used > token_budget and len(taken) >= min_messages:
                    taken.reverse()
                    return taken, len(taken) >= session.message_count, used
            before = session.message_count - len(taken) + 1  # the oldest taken's sequence
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
            if not rows:  # the session was deleted meanwhile
                break
            batch = [sql.history_message(row) for row in rows]
        taken.reverse()
        return taken, len(taken) >= session.message_count, used

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
        message_time: datetime | None = None,
    ) -> SessionRecord:
        """One transaction: the session (if new), the turn's messages, the current-session
        pointer and the request id's stored result; returns the session after the turn.
        The messages' create_time is `message_time` when given (an import keeps its
        dates), else now, as the session's update time is."""
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
            writes += sql.append_ops(
                self._sql, key, messages, now, claim, message_time=message_time
            )
            if not (loaded.is_current and target == loaded.session_id):
                writes.append(Op(self._sql.point_current, key))
            derive = completion.derive if completion is not None else None
            if completion is not None and derive is None:
                writes.append(self._mark_done(tenant_id, target, completion, now))
            try:
                results = yield ops(*writes, commit=derive is None)
            except ConstraintViolation:
                # Nothing was stored: find out why, and say so.
                yield from self._refusal(tenant_id, attribution, target, loaded, completion)
                raise AssertionError("unreachable: _refusal raises") from None
            record = sql.session_record(results[counted_at])
            if completion is not None and derive is not None:
                # The result names where the turn landed: known now, in the same transaction.
                done = dataclasses.replace(completion, response=derive(record))
                yield ops(self._mark_done(tenant_id, target, done, now), commit=True)
            return record

        try:
            record = await self._db.run(Work(unit, writes=True, heavy=heavy))
        except Exception:
            # On SQLite a claim's load in this transaction may have read (and held) this
            # turn before its commit failed: the next call reads the session again.
            if self._cache is not None:
                self._cache.forget_session(tenant_id, loaded.session_id)
            raise
        if self.on_stored is not None:
            self.on_stored()
        if self._cache is not None:
            self._extend(tenant_id, attribution, loaded, record, messages, heavy=heavy)
        return record

    def _mark_done(
        self, tenant_id: str, session_id: str, completion: Completion, now: datetime
    ) -> Op:
        return Op(
            self._sql.mark_done,
            {
                "tenant_id": tenant_id,
                "request_id": completion.request_id,
                "claim_owner": completion.owner,
                "session_id": session_id,
                "response": completion.response,
                "expire_time": completion.expire_time(now),
            },
        )

    def _extend(
        self,
        tenant_id: str,
        attribution: Attribution,
        loaded: LoadedSession,
        record: SessionRecord,
        turn: Sequence[NewMessage],
        *,
        heavy: bool,
    ) -> None:
        """Add the stored turn to the window held (on the event loop, after the unit ran)."""
        assert self._cache is not None
        if heavy:  # encoding a large turn is work for a thread: the next load reads it
            self._cache.forget_session(tenant_id, record.id)
            return
        stored = [as_history(message) for message in turn]
        if record.message_count == len(stored):  # the turn is the whole (new) session
            empty = HistoryWindow.of(record.id, record.create_time, attribution, 0, ())
            self._cache.keep(
                tenant_id, empty.extended(stored, loaded.token_budget, loaded.min_messages)
            )
            return
        self._cache.extend(
            tenant_id,
            record.id,
            record.create_time,
            record.message_count,
            stored,
            loaded.token_budget,
            loaded.min_messages,
        )

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
