"""Idempotency records of chat completions: a `request_id` runs the upstream call once.

A call claims its request id (a pending record with a lease), and the transaction that
stores the turn marks it done with the response. A retry finds the record: done, it gets
the stored response; pending, it waits and looks again; gone (the first call failed and
released it) or expired (its server died), it claims it and runs the call itself. The
records live in the database, so this holds across any number of server processes.

A new id, the common case, is claimed by one INSERT ... ON CONFLICT DO NOTHING (on
PostgreSQL on the event loop, one round trip); only an id seen before takes the transaction
that reads its record.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import Connection, and_, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Insert

from memori_server.errors import RequestIdReused
from memori_server.storage.database import Database
from memori_server.storage.point_reads import CompiledStatement, FastPathUnavailable
from memori_server.storage.tables import completion_requests

PENDING = "pending"
DONE = "done"


class ClaimState(enum.Enum):
    CLAIMED = "claimed"
    """This call owns the request id and must run the request."""
    DONE = "done"
    """An earlier call finished; `response` holds its result."""
    IN_FLIGHT = "in_flight"
    """An earlier call is still running; look again shortly."""


@dataclass(frozen=True, slots=True)
class Claim:
    state: ClaimState
    session_id: str | None = None
    response: str | None = None


_CLAIM_COLUMNS = [
    "tenant_id",
    "request_id",
    "kind",
    "fingerprint",
    "state",
    "create_time",
    "expire_time",
]


def _claim_new(dialect: str) -> Insert:
    """The claim of an id no record holds yet; inserts nothing when one does."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(completion_requests)
        .values({name: bindparam(name) for name in _CLAIM_COLUMNS})
        .on_conflict_do_nothing(index_elements=["tenant_id", "request_id"])
        # Whether it inserted is told by the row it returns: through SQLAlchemy on
        # PostgreSQL, rowcount is -1 for this statement.
        .returning(completion_requests.c.request_id)
    )


class IdempotencyStore:
    def __init__(self, database: Database, clock: Callable[[], datetime]) -> None:
        self._db = database
        self._clock = clock
        self._claim_new = _claim_new(database.dialect)
        self._claim_new_pg = (
            CompiledStatement(self._claim_new, database.engine.dialect)
            if database.dialect == "postgresql"
            else None
        )

    async def _claimed_on_loop(self, parameters: dict[str, Any]) -> bool | None:
        """PostgreSQL: the new-id claim in one autocommit round trip, without a thread.
        None when it did not run (SQLite, or no pooled connection free at once)."""
        compiled = self._claim_new_pg
        if compiled is None:
            return None

        async def work(connection: psycopg.AsyncConnection[Any]) -> bool:
            cursor = await connection.execute(compiled.sql, compiled.parameters(parameters))
            return await cursor.fetchone() is not None

        try:
            return await self._db.on_loop_postgres(work)
        except FastPathUnavailable:
            return None

    def _inserted(self, conn: Connection, new: dict[str, Any]) -> bool:
        return conn.execute(self._claim_new, new).first() is not None

    async def claim(
        self, tenant_id: str, request_id: str, kind: str, fingerprint: str, lease_seconds: float
    ) -> Claim:
        now = self._clock()
        key = and_(
            completion_requests.c.tenant_id == tenant_id,
            completion_requests.c.request_id == request_id,
        )
        lease = {
            "kind": kind,
            "fingerprint": fingerprint,
            "state": PENDING,
            "create_time": now,
            "expire_time": now + timedelta(seconds=lease_seconds),
        }
        new = {"tenant_id": tenant_id, "request_id": request_id, **lease}
        claimed_on_loop = await self._claimed_on_loop(new)
        if claimed_on_loop:
            return Claim(ClaimState.CLAIMED)

        def work(conn: Connection) -> Claim:
            # The insert already ran when the loop's attempt found a record: read it.
            if claimed_on_loop is None and self._inserted(conn, new):
                return Claim(ClaimState.CLAIMED)
            query = select(completion_requests).where(key)
            if self._db.dialect == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:  # released between the two statements: try once more
                claimed = self._inserted(conn, new)
                return Claim(ClaimState.CLAIMED if claimed else ClaimState.IN_FLIGHT)
            if row.expire_time <= now:  # its server died: take the claim over
                taken_over = {**lease, "session_id": None, "response": None}
                conn.execute(update(completion_requests).where(key).values(**taken_over))
                return Claim(ClaimState.CLAIMED)
            if row.kind != kind or row.fingerprint != fingerprint:
                raise RequestIdReused(request_id)
            if row.state == DONE:
                return Claim(ClaimState.DONE, row.session_id, row.response)
            return Claim(ClaimState.IN_FLIGHT)

        return await self._db.write(work, small=True)

    async def purge_expired(self) -> int:
        """Delete records past their expiry: finished ones after the TTL, abandoned claims."""
        now = self._clock()

        def work(conn: Connection) -> int:
            expired = completion_requests.c.expire_time < now
            return int(conn.execute(delete(completion_requests).where(expired)).rowcount)

        return await self._db.write(work)

    async def release(self, tenant_id: str, request_id: str) -> None:
        """Forget a pending claim whose call failed, so a retry runs the request again."""

        def work(conn: Connection) -> None:
            conn.execute(
                delete(completion_requests).where(
                    completion_requests.c.tenant_id == tenant_id,
                    completion_requests.c.request_id == request_id,
                    completion_requests.c.state == PENDING,
                )
            )

        await self._db.write(work, small=True)


def mark_done(
    conn: Connection,
    tenant_id: str,
    request_id: str,
    session_id: str,
    response: str,
    expire_time: datetime,
) -> None:
    """Inside the transaction that stores the turn: the claim becomes the stored result."""
    conn.execute(
        update(completion_requests)
        .where(
            completion_requests.c.tenant_id == tenant_id,
            completion_requests.c.request_id == request_id,
        )
        .values(state=DONE, session_id=session_id, response=response, expire_time=expire_time)
    )
