"""Idempotency records of chat completions: a `request_id` runs the upstream call once.

A call claims its request id (a pending record with a lease), and the transaction that
stores the turn marks it done with the response. A retry finds the record: done, it gets
the stored response; pending, it waits and looks again; gone (the first call failed and
released it) or expired (its server died), it claims it and runs the call itself. The
records live in the database, so this holds across any number of server processes.

A new id, the common case, is claimed by one INSERT ... ON CONFLICT DO NOTHING, committed
with its batch (one round trip on PostgreSQL); only an id seen before reads its record.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from memori_server.errors import RequestIdReused
from memori_server.storage import statements as sql
from memori_server.storage.database import Database
from memori_server.storage.units import Fetch, Op, Unit, Work, ops


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


class IdempotencyStore:
    def __init__(self, database: Database, clock: Callable[[], datetime]) -> None:
        self._db = database
        self._sql = database.statements
        self._clock = clock

    async def claim(
        self, tenant_id: str, request_id: str, kind: str, fingerprint: str, lease_seconds: float
    ) -> Claim:
        now = self._clock()
        key = {"tenant_id": tenant_id, "request_id": request_id}
        lease = {
            **key,
            "kind": kind,
            "fingerprint": fingerprint,
            "now": now,
            "expire_time": now + timedelta(seconds=lease_seconds),
        }

        def unit() -> Unit[Claim]:
            (inserted,) = yield ops(Op(self._sql.claim_new, lease, Fetch.ONE), commit=True)
            if inserted is not None:
                return Claim(ClaimState.CLAIMED)
            (row,) = yield ops(Op(self._sql.claim_row, key, Fetch.ONE))
            if row is None:  # released between the two statements: try once more
                (again,) = yield ops(Op(self._sql.claim_new, lease, Fetch.ONE), commit=True)
                return Claim(ClaimState.CLAIMED if again is not None else ClaimState.IN_FLIGHT)
            if row.expire_time <= now:  # its server died: take the claim over
                yield ops(Op(self._sql.take_over_claim, lease), commit=True)
                return Claim(ClaimState.CLAIMED)
            if row.kind != kind or row.fingerprint != fingerprint:
                raise RequestIdReused(request_id)
            if row.state == sql.DONE:
                return Claim(ClaimState.DONE, row.session_id, row.response)
            return Claim(ClaimState.IN_FLIGHT)

        return await self._db.run(Work(unit, writes=True))

    async def release(self, tenant_id: str, request_id: str) -> None:
        """Forget a pending claim whose call failed, so a retry runs the request again."""
        key = {"tenant_id": tenant_id, "request_id": request_id}

        def unit() -> Unit[None]:
            yield ops(Op(self._sql.release_claim, key), commit=True)

        await self._db.run(Work(unit, writes=True))

    async def purge_expired(self) -> int:
        """Delete records past their expiry: finished ones after the TTL, abandoned claims."""
        now = self._clock()

        def unit() -> Unit[int]:
            (purged,) = yield ops(
                Op(self._sql.purge_requests, {"now": now}, Fetch.ROWCOUNT), commit=True
            )
            return int(purged)

        return await self._db.run(Work(unit, writes=True, heavy=True))


__all__ = ["Claim", "ClaimState", "IdempotencyStore"]
