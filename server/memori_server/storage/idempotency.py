"""Idempotency records of chat completions: a `request_id` runs the upstream call once.

A call claims its request id (a pending record with a lease), and the transaction that
stores the turn marks it done with the response. A retry finds the record: done, it gets
the stored response; pending, it waits and looks again; gone (the first call failed and
released it) or expired (its server died), it claims it and runs the call itself. The
records live in the database, so this holds across any number of server processes.

A new id, the common case, is claimed by one INSERT ... ON CONFLICT DO NOTHING, committed
with its batch (one round trip on PostgreSQL); only an id seen before reads its record.

Each claim carries an owner token, unique to the call that made it. Only that call
marks the record done (in the same transaction as its turn, which is stored only while the
token still matches) or releases it, so a call that outlived its lease can neither overwrite
a retry's claim nor store a second turn.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from memori_server.errors import RequestIdReused
from memori_server.storage import statements as sql
from memori_server.storage.database import Database
from memori_server.storage.units import Fetch, Op, Unit, Work, ops


class _OwnerTokens:
    """Owner tokens unique across calls and processes: a random prefix of the process (new
    in a forked child) and a count, 32 characters. One `os.urandom` per call cost a system
    call and more than the rest of the claim's Python. Tokens never leave the server, so
    they need not be unpredictable, only unique."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counts = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counts):016x}"


_OWNER_TOKENS = _OwnerTokens()
os.register_at_fork(after_in_child=_OWNER_TOKENS.restart)


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
    owner: str | None = None
    """CLAIMED: this call's token, which marking done and releasing need."""


@dataclass(frozen=True, slots=True)
class Claiming:
    """A claim about to be made: the unit that makes it, and the owner token it claims with
    (releasing with it is safe whatever the unit did: it frees only a claim of this token)."""

    owner: str
    start: Callable[[], Unit[Claim]]


PURGE_BATCH = 1000
# A retry that finds its request in flight looks again after these pauses (seconds).
IN_FLIGHT_POLL = (0.02, 0.05, 0.1, 0.2, 0.5)


class IdempotencyStore:
    def __init__(self, database: Database, clock: Callable[[], datetime]) -> None:
        self._db = database
        self._sql = database.statements
        self._clock = clock

    async def claim(
        self, tenant_id: str, request_id: str, kind: str, fingerprint: str, lease_seconds: float
    ) -> Claim:
        # A claim lost to a power cut (or a database crash) is as if the call had not begun:
        # no turn of it is stored without the claim (the turn's insert needs it), so a retry
        # runs it again.
        claiming = self.claiming(tenant_id, request_id, kind, fingerprint, lease_seconds)
        return await self._db.run(Work(claiming.start, writes=True, durable=False))

    def claiming(
        self, tenant_id: str, request_id: str, kind: str, fingerprint: str, lease_seconds: float
    ) -> Claiming:
        """The unit of `claim`, for a caller that runs it with another (it need not be
        durable; it begins with a batch of its own and meets no constraint violation)."""
        now = self._clock()
        key = {"tenant_id": tenant_id, "request_id": request_id}
        owner = _OWNER_TOKENS.next()
        lease = {
            **key,
            "kind": kind,
            "fingerprint": fingerprint,
            "now": now,
            "expire_time": now + timedelta(seconds=lease_seconds),
            "claim_owner": owner,
        }
        claimed = Claim(ClaimState.CLAIMED, owner=owner)

        def unit() -> Unit[Claim]:
            (inserted,) = yield ops(Op(self._sql.claim_new, lease, Fetch.ONE), commit=True)
            if inserted is not None:
                return claimed
            (row,) = yield ops(Op(self._sql.claim_row, key, Fetch.ONE))
            if row is None:  # released between the two statements: try once more
                (again,) = yield ops(Op(self._sql.claim_new, lease, Fetch.ONE), commit=True)
                return claimed if again is not None else Claim(ClaimState.IN_FLIGHT)
            if row.expire_time <= now:  # its server died: take the claim over
                yield ops(Op(self._sql.take_over_claim, lease), commit=True)
                return claimed
            if row.kind != kind or row.fingerprint != fingerprint:
                raise RequestIdReused(request_id)
            if row.state == sql.DONE:
                return Claim(ClaimState.DONE, row.session_id, row.response)
            return Claim(ClaimState.IN_FLIGHT)

        return Claiming(owner, unit)

    async def settled_claim(
        self, tenant_id: str, request_id: str, kind: str, fingerprint: str, lease_seconds: float
    ) -> Claim:
        """`claim`, waiting while an earlier call with the id is in flight: CLAIMED or DONE
        (the caller's deadline, or the earlier call's lease running out, ends the wait)."""
        for attempt in itertools.count():
            claim = await self.claim(tenant_id, request_id, kind, fingerprint, lease_seconds)
            if claim.state is not ClaimState.IN_FLIGHT:
                return claim
            await asyncio.sleep(IN_FLIGHT_POLL[min(attempt, len(IN_FLIGHT_POLL) - 1)])
        raise AssertionError("unreachable: itertools.count() does not end")

    async def release(self, tenant_id: str, request_id: str, owner: str) -> None:
        """Forget this call's pending claim (the call failed), so a retry runs it again;
        a claim a retry has taken over meanwhile is the retry's and stays."""
        key = {"tenant_id": tenant_id, "request_id": request_id, "claim_owner": owner}

        def unit() -> Unit[None]:
            yield ops(Op(self._sql.release_claim, key), commit=True)

        await self._db.run(Work(unit, writes=True))

    async def purge_expired(self) -> int:
        """Delete records past their expiry (finished ones after the retention, abandoned
        claims), a batch per transaction; returns how many."""
        now = self._clock()

        def unit() -> Unit[int]:
            (purged,) = yield ops(
                Op(self._sql.purge_requests, {"now": now, "limit": PURGE_BATCH}, Fetch.ROWCOUNT),
                commit=True,
            )
            return int(purged)

        total = 0
        while True:
            purged = await self._db.run(Work(unit, writes=True, heavy=True))
            total += purged
            if purged < PURGE_BATCH:
                return total


__all__ = ["Claim", "ClaimState", "IdempotencyStore"]
