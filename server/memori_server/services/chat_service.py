"""memori.v1.ChatService: session resolution → history → upstream → storage, per call.

The call's path reads top to bottom in `_run_complete` and `_run_stream`. Idempotency wraps
both: a request id is claimed first, and released again when the call fails, so nothing of
a failed, invalid or cancelled call remains.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from memori_proto.v1 import chat_pb2, chat_pb2_grpc

from memori_server import validation
from memori_server.chat import history
from memori_server.chat.completion_pb import chunk_pb, completion_pb
from memori_server.chat.messages import from_reply, to_record
from memori_server.chat.request import ChatRequest, parse
from memori_server.chat.stream_assembly import StreamAssembly
from memori_server.chat.upstream import Upstream
from memori_server.chat.upstream_errors import broken_stream, invalid_response
from memori_server.config import Settings
from memori_server.errors import Context, SessionNotFound, maps_errors, maps_stream_errors
from memori_server.services.convert import session_pb
from memori_server.services.tenancy import tenant_of
from memori_server.storage.idempotency import Claim, ClaimState, IdempotencyStore
from memori_server.storage.records import Completion, SessionRecord
from memori_server.storage.session_store import SessionStore
from memori_server.storage.turn_store import ChatContext, TurnStore
from memori_server.tokens import encoding_for
from memori_server.validation import Attribution, Violations

MAX_REQUEST_ID_CHARS = 128
LEASE_MARGIN_SECONDS = 30.0
DEADLINE_MARGIN_SECONDS = 0.05
# A retry that finds its request in flight looks again after these pauses (seconds).
IN_FLIGHT_POLL = (0.02, 0.05, 0.1, 0.2, 0.5)
T = TypeVar("T")
ChatCall = chat_pb2.CompleteRequest | chat_pb2.StreamCompleteRequest


@dataclass(frozen=True, slots=True)
class PreparedCall:
    tenant_id: str
    attribution: Attribution
    session_id: str | None
    request_id: str | None
    fingerprint: str
    chat: ChatRequest


def _request_id(value: str, violations: Violations) -> str | None:
    if not value:
        return None
    if len(value) > MAX_REQUEST_ID_CHARS:
        violations.add("request_id", f"at most {MAX_REQUEST_ID_CHARS} characters")
    elif any(ord(ch) < 33 or ord(ch) == 127 for ch in value):
        violations.add("request_id", "must not contain spaces or control characters")
    return value


def _prepare(request: ChatCall, context: Context) -> PreparedCall:
    violations = Violations()
    if request.HasField("attribution"):
        attribution = validation.attribution(
            request.attribution.entity_id, request.attribution.process_id, "attribution", violations
        )
    else:
        violations.add("attribution", "required: {entity_id, process_id}")
        attribution = Attribution("", "")
    session_id = (
        validation.session_id(request.session_id, "session_id", violations)
        if request.session_id
        else None
    )
    request_id = _request_id(request.request_id, violations)
    if not request.HasField("request"):
        violations.add("request", "required: the chat completions request")
    chat = parse(request.request, violations)
    violations.raise_if_any()
    digest = hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()
    return PreparedCall(
        tenant_id=tenant_of(context),
        attribution=attribution,
        session_id=session_id,
        request_id=request_id,
        fingerprint=digest,
        chat=chat,
    )


def _choice_zero(body: dict[str, Any]) -> dict[str, Any]:
    for choice in body["choices"]:
        if isinstance(choice, dict) and (choice.get("index") or 0) == 0:
            message = choice.get("message")
            if isinstance(message, dict):
                return message
    raise invalid_response("no message in choice 0")


class ChatService(chat_pb2_grpc.ChatServiceServicer):
    def __init__(
        self,
        turns: TurnStore,
        sessions: SessionStore,
        requests: IdempotencyStore,
        upstream: Upstream,
        settings: Settings,
    ) -> None:
        self._turns = turns
        self._sessions = sessions
        self._requests = requests
        self._upstream = upstream
        self._settings = settings
        self._releases: set[asyncio.Task[None]] = set()

    # -- the two RPCs --------------------------------------------------------------------

    @maps_errors
    async def Complete(  # noqa: N802 (gRPC method names)
        self, request: chat_pb2.CompleteRequest, context: Context
    ) -> chat_pb2.CompleteResponse:
        call = _prepare(request, context)
        if call.request_id is not None:
            claim = await self._claim(call, "complete", context)
            if claim.state is ClaimState.DONE:
                return await self._replay_complete(call, claim)
        return await self._releasing_on_failure(call, self._run_complete(call, context))

    @maps_stream_errors
    async def StreamComplete(  # noqa: N802
        self, request: chat_pb2.StreamCompleteRequest, context: Context
    ) -> AsyncIterator[chat_pb2.StreamCompleteResponse]:
        call = _prepare(request, context)
        if call.request_id is not None:
            claim = await self._claim(call, "stream", context)
            if claim.state is ClaimState.DONE:
                async for response in self._replay_stream(call, claim):
                    yield response
                return
        try:
            async for response in self._run_stream(call, context):
                yield response
        except BaseException:
            self._release(call)
            raise

    # -- one call, top to bottom ---------------------------------------------------------

    async def _context(self, call: PreparedCall) -> tuple[ChatContext, history.Assembly]:
        settings = self._settings
        context = await self._turns.load(
            call.tenant_id,
            call.attribution,
            call.session_id,
            idle_seconds=settings.session_idle_timeout,
            token_budget=settings.history_token_budget,
            min_messages=len(call.chat.messages),
        )
        assembly = history.assemble(
            call.chat.messages,
            context.history,
            settings.history_token_budget,
            from_session_start=context.from_session_start,
        )
        return context, assembly

    def _timeout(self, context: Context) -> float:
        """The caller's deadline, a little early, so our own status reaches the caller."""
        remaining = context.time_remaining()
        if remaining is None:
            return self._upstream.default_timeout
        return max(remaining - DEADLINE_MARGIN_SECONDS, 0.001)

    async def _store(
        self,
        call: PreparedCall,
        context: ChatContext,
        assembly: history.Assembly,
        reply: dict[str, Any],
        response: str,
    ) -> SessionRecord:
        encoding = encoding_for(call.chat.model)
        turn = [to_record(message, encoding) for message in assembly.new_messages]
        turn.append(to_record(from_reply(reply), encoding))
        completion = (
            Completion(call.request_id, response, self._settings.idempotency_ttl)
            if call.request_id is not None
            else None
        )
        return await self._turns.store_turn(
            call.tenant_id,
            call.attribution,
            context,
            turn,
            idle_seconds=self._settings.session_idle_timeout,
            completion=completion,
        )

    async def _run_complete(self, call: PreparedCall, rpc: Context) -> chat_pb2.CompleteResponse:
        context, assembly = await self._context(call)
        body = {**call.chat.parameters, "messages": assembly.upstream_messages}
        text, parsed = await self._upstream.complete(body, self._timeout(rpc))
        record = await self._store(call, context, assembly, _choice_zero(parsed), text)
        return chat_pb2.CompleteResponse(
            session=session_pb(record), completion=completion_pb(parsed), completion_json=text
        )

    async def _run_stream(
        self, call: PreparedCall, rpc: Context
    ) -> AsyncIterator[chat_pb2.StreamCompleteResponse]:
        context, assembly = await self._context(call)
        yield chat_pb2.StreamCompleteResponse(session=session_pb(self._session(call, context)))
        body = {**call.chat.parameters, "messages": assembly.upstream_messages}
        reply = StreamAssembly()
        received: list[str] = []
        held: list[chat_pb2.StreamCompleteResponse] = []
        async for text, chunk in self._upstream.stream(body, self._timeout(rpc)):
            reply.add(chunk)
            received.append(text)
            response = chat_pb2.StreamCompleteResponse(chunk=chunk_pb(chunk), chunk_json=text)
            if reply.finished or held:
                # From the finish reason on, chunks wait until the turn is stored: a client
                # that has seen the end of the stream finds the turn in the session.
                held.append(response)
            else:
                yield response
        if not reply.finished:
            raise broken_stream("it ended without a finish reason")
        await self._store(call, context, assembly, reply.reply(), json.dumps(received))
        for response in held:
            yield response

    @staticmethod
    def _session(call: PreparedCall, context: ChatContext) -> SessionRecord:
        """The session as it stands before the turn; a new one exists once the turn is stored."""
        if context.record is not None:
            return context.record
        now = datetime.now(UTC)
        return SessionRecord(
            id=context.session_id,
            tenant_id=call.tenant_id,
            attribution=call.attribution,
            create_time=now,
            update_time=now,
            message_count=0,
        )

    # -- idempotency -----------------------------------------------------------------------

    async def _claim(self, call: PreparedCall, kind: str, rpc: Context) -> Claim:
        assert call.request_id is not None
        lease = self._timeout(rpc) + LEASE_MARGIN_SECONDS
        for attempt in itertools.count():
            claim = await self._requests.claim(
                call.tenant_id, call.request_id, kind, call.fingerprint, lease
            )
            if claim.state is not ClaimState.IN_FLIGHT:
                return claim
            await asyncio.sleep(IN_FLIGHT_POLL[min(attempt, len(IN_FLIGHT_POLL) - 1)])
        raise AssertionError("unreachable: the caller's deadline or the lease ends the wait")

    def _release(self, call: PreparedCall) -> None:
        """Drop the claim of a failed call in the background: it must survive cancellation."""
        if call.request_id is None:
            return
        task = asyncio.get_running_loop().create_task(
            self._requests.release(call.tenant_id, call.request_id)
        )
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _releasing_on_failure(self, call: PreparedCall, work: Awaitable[T]) -> T:
        try:
            return await work
        except BaseException:
            self._release(call)
            raise

    async def _stored_session(self, call: PreparedCall, claim: Claim) -> SessionRecord:
        if claim.session_id is None:
            raise SessionNotFound("")
        return await self._sessions.get(call.tenant_id, claim.session_id)

    async def _replay_complete(self, call: PreparedCall, claim: Claim) -> chat_pb2.CompleteResponse:
        text = claim.response or "{}"
        return chat_pb2.CompleteResponse(
            session=session_pb(await self._stored_session(call, claim)),
            completion=completion_pb(json.loads(text)),
            completion_json=text,
            replayed=True,
        )

    async def _replay_stream(
        self, call: PreparedCall, claim: Claim
    ) -> AsyncIterator[chat_pb2.StreamCompleteResponse]:
        yield chat_pb2.StreamCompleteResponse(
            session=session_pb(await self._stored_session(call, claim)), replayed=True
        )
        for text in json.loads(claim.response or "[]"):
            yield chat_pb2.StreamCompleteResponse(
                chunk=chunk_pb(json.loads(text)), chunk_json=text, replayed=True
            )


__all__ = ["ChatService"]
