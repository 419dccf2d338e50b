"""SessionService.AppendMessages: messages stored without a completion (imports, backfills,
turns an app ran elsewhere).

A call reads top to bottom like a completion without the upstream: validate (on the
heavy-work thread when large) → the content-URL policy → claim the request id, if any →
resolve the session as a completion does (`TurnStore.load`: the given id, else the
attribution's current session) → count tokens → one transaction (`TurnStore.store_turn`):
the session if new, the messages with the next sequence numbers, the current-session
pointer, the request id's result. Validation and limits are a completion's messages', but
system and developer messages are stored too (a completion sends them upstream only).

Appends have per-tenant limits of their own, by the completion limits' settings (concurrency,
rate and burst), so a bulk import neither takes the tenant's completion budget nor a
database that other tenants share.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from memori_proto.v1 import session_pb2

from memori_server import validation
from memori_server.chat.content_urls import ContentUrlPolicy
from memori_server.chat.messages import OpenAIMessage, to_record
from memori_server.chat.request import RequestLimits, parse_messages
from memori_server.config import Settings
from memori_server.domain import Attribution
from memori_server.errors import SessionNotFound
from memori_server.offload import offload
from memori_server.rpc_errors import Context
from memori_server.services.chat_service import HEAVY_MESSAGES, HEAVY_REQUEST_BYTES
from memori_server.services.claim_releases import ClaimReleases
from memori_server.services.convert import session_pb
from memori_server.services.fingerprint import request_fingerprint
from memori_server.services.tenancy import calling_tenant
from memori_server.storage.idempotency import Claim, ClaimState, IdempotencyStore
from memori_server.storage.records import Completion, NewMessage, SessionRecord
from memori_server.storage.session_store import SessionStore
from memori_server.storage.store import utc_now
from memori_server.storage.turn_store import TurnStore
from memori_server.tenant_limits import TenantLimits
from memori_server.tokens import bundled_encoding
from memori_server.validation import Violations

REQUEST_KIND = "append"  # completion_requests.kind: a request id names one kind of call
# How long a request id's claim holds without a caller deadline; a retry finding the claim
# of a call that died waits at most this long before taking it over.
DEFAULT_LEASE_SECONDS = 60.0
LEASE_MARGIN_SECONDS = 30.0
TOO_MANY_HINT = "split a larger import into several calls"


@dataclass(frozen=True, slots=True)
class _Append:
    attribution: Attribution
    session_id: str | None
    request_id: str | None
    messages: list[OpenAIMessage]
    content_urls: list[tuple[str, str]]
    message_time: datetime | None
    fingerprint: str


def _validate(
    request: session_pb2.AppendMessagesRequest, limits: RequestLimits, now: datetime
) -> _Append:
    violations = Violations()
    attribution, session_id, request_id = validation.turn_target(request, violations)
    messages, content_urls = parse_messages(
        request.messages, limits, "messages", violations, TOO_MANY_HINT
    )
    message_time = (
        validation.past_time(request.create_time, "create_time", now, violations)
        if request.HasField("create_time")
        else None
    )
    violations.raise_if_any()
    return _Append(
        attribution=attribution,
        session_id=session_id,
        request_id=request_id,
        messages=messages,
        content_urls=content_urls,
        message_time=message_time,
        fingerprint=request_fingerprint(request),
    )


def _records(messages: list[OpenAIMessage]) -> list[NewMessage]:
    """The messages as stored, with token counts (no model: the bundled encoding)."""
    encoding = bundled_encoding()
    return [to_record(message, encoding) for message in messages]


def _sequences(record: SessionRecord, count: int) -> list[int]:
    """The numbers of the last `count` messages of the session: the ones just appended."""
    return list(range(record.message_count - count + 1, record.message_count + 1))


def _kept(record: SessionRecord, count: int) -> str:
    """A request id's result: where the messages landed (they are numbered without gaps)."""
    return json.dumps({"first_sequence": record.message_count - count + 1, "count": count})


class Appender:
    def __init__(
        self,
        turns: TurnStore,
        sessions: SessionStore,
        requests: IdempotencyStore,
        settings: Settings,
        releases: ClaimReleases | None = None,
    ) -> None:
        self._turns = turns
        self._sessions = sessions
        self._requests = requests
        self._settings = settings
        self._limits = RequestLimits(max_messages=settings.max_request_messages)
        self._content_urls = ContentUrlPolicy.configured(settings)
        self._tenants = TenantLimits.configured(settings, what="appends")
        self._releases = releases or ClaimReleases(requests)

    async def append(
        self, request: session_pb2.AppendMessagesRequest, rpc: Context
    ) -> session_pb2.AppendMessagesResponse:
        tenant_id = calling_tenant()
        with self._tenants.completion(tenant_id):
            heavy = (
                request.ByteSize() > HEAVY_REQUEST_BYTES or len(request.messages) > HEAVY_MESSAGES
            )
            call = await offload(heavy, _validate, request, self._limits, utc_now())
            # Stored parts are sent upstream on every later turn: the same policy applies.
            await self._content_urls.check(call.content_urls)
            if call.request_id is None:
                return await self._store(tenant_id, call, None, heavy=heavy)
            claim = await self._requests.settled_claim(
                tenant_id, call.request_id, REQUEST_KIND, call.fingerprint, self._lease(rpc)
            )
            if claim.state is ClaimState.DONE:
                return await self._replay(tenant_id, claim)
            with self._releases.holding():
                try:
                    return await self._store(tenant_id, call, claim.owner, heavy=heavy)
                except BaseException:
                    # In the background: it must outlive the call's cancellation, and the
                    # server waits for it at shutdown.
                    self._releases.release(tenant_id, call.request_id, claim.owner)
                    raise

    async def _store(
        self, tenant_id: str, call: _Append, claim_owner: str | None, *, heavy: bool
    ) -> session_pb2.AppendMessagesResponse:
        settings = self._settings
        # The window a completion reads: the history cache stays as a completion holds it.
        loaded = await self._turns.load(
            tenant_id,
            call.attribution,
            call.session_id,
            idle_seconds=settings.session_idle_timeout,
            token_budget=settings.history_token_budget,
            min_messages=0,
            heavy=heavy,
        )
        turn = await offload(heavy, _records, call.messages)
        count = len(turn)
        completion = None
        if call.request_id is not None and claim_owner is not None:
            completion = Completion(
                call.request_id,
                claim_owner,
                None,
                settings.idempotency_retention,
                derive=lambda record: _kept(record, count),
            )
        record = await self._turns.store_turn(
            tenant_id,
            call.attribution,
            loaded,
            turn,
            idle_seconds=settings.session_idle_timeout,
            completion=completion,
            heavy=heavy,
            message_time=call.message_time,
        )
        return session_pb2.AppendMessagesResponse(
            session=session_pb(record), sequences=_sequences(record, count)
        )

    async def _replay(self, tenant_id: str, claim: Claim) -> session_pb2.AppendMessagesResponse:
        if claim.session_id is None:
            raise SessionNotFound("")
        session = await self._sessions.get(tenant_id, claim.session_id)
        kept = json.loads(claim.response or "{}")
        first, count = int(kept.get("first_sequence", 0)), int(kept.get("count", 0))
        return session_pb2.AppendMessagesResponse(
            session=session_pb(session), sequences=range(first, first + count), replayed=True
        )

    @staticmethod
    def _lease(rpc: Context) -> float:
        remaining = rpc.time_remaining()
        return (DEFAULT_LEASE_SECONDS if remaining is None else remaining) + LEASE_MARGIN_SECONDS


__all__ = ["Appender"]
