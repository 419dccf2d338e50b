"""memori.v1.ChatService: session resolution → history → upstream → storage, per call.

The call's path reads top to bottom in `_run_complete` and `_run_stream`. Idempotency wraps
both: a request id is claimed first, and released again when the call fails, so nothing of
a failed, invalid or cancelled call remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf.message import Message
from memori_proto.v1 import chat_pb2, chat_pb2_grpc

from memori_server import validation
from memori_server.chat import history
from memori_server.chat.completion_pb import chunk_pb, completion_pb
from memori_server.chat.content_urls import ContentUrlPolicy
from memori_server.chat.messages import OpenAIMessage, from_reply, to_record
from memori_server.chat.model_access import ModelAccess
from memori_server.chat.parameters import allowed_extra_parameters
from memori_server.chat.request import ChatRequest, RequestLimits, parse
from memori_server.chat.stream_assembly import StreamAssembly, rechunk
from memori_server.chat.upstream import Upstream, bounded, encode_body
from memori_server.chat.upstream_errors import broken_stream, invalid_response
from memori_server.config import Settings
from memori_server.domain import Attribution
from memori_server.errors import MemoryOff, ReplyTooLarge, ResultNotKept, SessionNotFound
from memori_server.foreground import Foreground
from memori_server.memory.recall import Recall, RecallRequest, recall_message, requested
from memori_server.memory.search import FoundMemory
from memori_server.offload import offload
from memori_server.rpc_errors import Context
from memori_server.services.claim_releases import ClaimReleases
from memori_server.services.convert import session_pb
from memori_server.services.fingerprint import request_fingerprint
from memori_server.services.memory_service import memory_pb
from memori_server.services.tenancy import calling_tenant
from memori_server.storage.idempotency import Claim, ClaimState, IdempotencyStore
from memori_server.storage.records import Completion, NewMessage, SessionRecord
from memori_server.storage.session_store import SessionStore
from memori_server.storage.tables import NAME_LENGTH
from memori_server.storage.turn_store import LoadedSession, TurnStore
from memori_server.tenant_limits import TenantLimits
from memori_server.tokens import encoding_for
from memori_server.validation import Violations

LEASE_MARGIN_SECONDS = 30.0
# Requests beyond these sizes are validated, assembled, counted and encoded in a worker
# thread (and read and written on the database's thread path), so that one large call never
# holds the event loop that every other call and the health checks share.
HEAVY_REQUEST_BYTES = 64 * 1024
# A Session message's largest size: a UUID, two names of NAME_LENGTH characters (four bytes
# each in UTF-8), two times and a count, with their tags and lengths.
SESSION_BYTES_BOUND = 38 + 2 * (4 * NAME_LENGTH + 3) + 3 + 2 * 24 + 11
HEAVY_MESSAGES = 64
DEADLINE_MARGIN_SECONDS = 0.05
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
    heavy: bool
    """A large request: its CPU and database work runs off the event loop."""
    claim_owner: str | None = None
    """With a request id: this call's claim token, once the claim is this call's."""
    recall: RecallRequest | None = None
    """Long-term memory to recall into the call; None: none."""

    def claimed_by(self, owner: str | None) -> PreparedCall:
        """The call once its claim is `owner`'s (`dataclasses.replace` costs several times
        more, on every call with a request id)."""
        return PreparedCall(
            self.tenant_id,
            self.attribution,
            self.session_id,
            self.request_id,
            self.fingerprint,
            self.chat,
            self.heavy,
            owner,
            self.recall,
        )


def _is_large(messages: list[dict[str, Any]]) -> bool:
    """Whether storing `messages` (counting their tokens, writing them) is heavy work."""
    if len(messages) > HEAVY_MESSAGES:
        return True
    size = sum(len(json.dumps(m.get("content"), ensure_ascii=False)) for m in messages)
    return size > HEAVY_REQUEST_BYTES


def _prepare(
    request: ChatCall, tenant_id: str, limits: RequestLimits, heavy: bool, recall_default: bool
) -> PreparedCall:
    violations = Violations()
    attribution, session_id, request_id = validation.turn_target(request, violations)
    if not request.HasField("request"):
        violations.add("request", "required: the chat completions request")
    chat = parse(request.request, limits, violations)
    recall = requested(request.recall, request.HasField("recall"), recall_default, violations)
    violations.raise_if_any()
    digest = request_fingerprint(request)
    return PreparedCall(
        tenant_id=tenant_id,
        attribution=attribution,
        session_id=session_id,
        request_id=request_id,
        fingerprint=digest,
        chat=chat,
        heavy=heavy,
        recall=recall,
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
        recall: Recall | None = None,
        foreground: Foreground | None = None,
        releases: ClaimReleases | None = None,
    ) -> None:
        """`recall` is None when the server runs without long-term memory; `foreground`
        counts the completions being worked on, for background work to give way to."""
        self._recall = recall
        self._foreground = foreground or Foreground()
        self._turns = turns
        self._sessions = sessions
        self._requests = requests
        self._upstream = upstream
        self._settings = settings
        self._releases = releases or ClaimReleases(requests)
        self._limits = RequestLimits(
            max_messages=settings.max_request_messages,
            max_choices=settings.max_choices,
            extra_parameters=allowed_extra_parameters(settings.extra_parameters.split(",")),
        )
        self._models = ModelAccess.parse(settings.allowed_models.split(","))
        self._content_urls = ContentUrlPolicy.configured(settings)
        self._tenants = TenantLimits.configured(settings)

    # -- the two RPCs --------------------------------------------------------------------

    async def Complete(  # noqa: N802 (gRPC method names)
        self, request: chat_pb2.CompleteRequest, rpc: Context
    ) -> chat_pb2.CompleteResponse:
        async with self._admitted(request, rpc, stream=False) as (call, claim, loaded):
            if claim is not None and claim.state is ClaimState.DONE:
                return await self._replay_complete(call, claim)
            return await self._releasing_on_failure(call, self._run_complete(call, rpc, loaded))

    async def StreamComplete(  # noqa: N802
        self, request: chat_pb2.StreamCompleteRequest, rpc: Context
    ) -> AsyncIterator[chat_pb2.StreamCompleteResponse]:
        async with self._admitted(request, rpc, stream=True) as (call, claim, loaded):
            if claim is not None and claim.state is ClaimState.DONE:
                async for response in self._replay_stream(call, claim):
                    yield response
                return
            try:
                async for response in self._run_stream(call, rpc, loaded):
                    yield response
            except BaseException:
                self._release(call)
                raise

    @contextlib.asynccontextmanager
    async def _admitted(
        self, request: ChatCall, rpc: Context, *, stream: bool
    ) -> AsyncIterator[tuple[PreparedCall, Claim | None, LoadedSession | None]]:
        """Hold one of the tenant's completion slots while the call runs; inside, the
        validated call and, when it has a request id, its claim (with the session's context
        when it was read with the claim)."""
        tenant_id = calling_tenant()
        with self._tenants.completion(tenant_id), self._foreground.serving():
            call = await self._prepare(request, tenant_id)
            with self._releases.holding():  # a stop waits for its release, if it fails
                claim = loaded = None
                if call.request_id is not None:
                    kind = "stream" if stream else "complete"
                    claim, loaded = await self._claim(call, kind, rpc, stream=stream)
                    call = call.claimed_by(claim.owner)
                yield call, claim, loaded

    async def _prepare(self, request: ChatCall, tenant_id: str) -> PreparedCall:
        """Validate the request (in a thread when it is large), then the operator's policies."""
        heavy = (
            request.ByteSize() > HEAVY_REQUEST_BYTES
            or len(request.request.messages) > HEAVY_MESSAGES
        )
        recall_default = self._recall is not None and self._recall.default_on
        call = await offload(
            heavy, _prepare, request, tenant_id, self._limits, heavy, recall_default
        )
        if call.recall is not None and self._recall is None:
            raise MemoryOff()
        self._models.check(tenant_id, call.chat.model)
        await self._content_urls.check(call.chat.content_urls)
        return call

    # -- one call, top to bottom ---------------------------------------------------------

    async def _load_and_assemble(
        self, call: PreparedCall, loaded: LoadedSession | None, *, stream: bool
    ) -> tuple[LoadedSession, list[OpenAIMessage], bytes, list[FoundMemory]]:
        """The session with its recent history (`loaded`, when it was read with the claim),
        the request's messages new to the session, the upstream's body, and the memories
        recalled into it."""
        if loaded is None:
            loaded, recalled = await self._load_and_recall(call)
        else:  # read with the claim, which only a call without recall does
            recalled = []
        # Stored messages come encoded: only the request's own size makes assembling heavy.
        new, body = await offload(call.heavy, self._assemble, call, loaded, stream, recalled)
        return loaded, new, body, recalled

    def _load_target(self, call: PreparedCall) -> dict[str, Any]:
        """What `TurnStore.load` is asked for a call, beside the session's names."""
        return {
            "idle_seconds": self._settings.session_idle_timeout,
            "token_budget": self._settings.history_token_budget,
            "min_messages": len(call.chat.messages),
            "heavy": call.heavy,
        }

    async def _load_and_recall(self, call: PreparedCall) -> tuple[LoadedSession, list[FoundMemory]]:
        """The session with its recent history, and the memories recalled for the call."""
        recalling: asyncio.Future[list[FoundMemory]] | None = None
        if call.recall is not None and self._recall is not None and call.session_id:
            # The session is named: its own passages are known to leave out, so the search
            # runs while the session loads.
            recalling = asyncio.ensure_future(self._recall_for(call, call.session_id))
        try:
            loaded = await self._turns.load(
                call.tenant_id, call.attribution, call.session_id, **self._load_target(call)
            )
        except BaseException:
            if recalling is not None:
                recalling.cancel()
                with contextlib.suppress(BaseException):
                    await recalling
            raise
        recalled: list[FoundMemory] = []
        if recalling is not None:
            recalled = await recalling
        elif call.recall is not None and self._recall is not None:
            recalled = await self._recall_for(call, loaded.session_id)
        return loaded, recalled

    async def _recall_for(self, call: PreparedCall, session_id: str) -> list[FoundMemory]:
        assert call.recall is not None
        assert self._recall is not None
        return await self._recall.memories(
            call.tenant_id, call.attribution, session_id, call.chat.messages, call.recall
        )

    def _assemble(
        self,
        call: PreparedCall,
        loaded: LoadedSession,
        stream: bool,
        recalled: list[FoundMemory],
    ) -> tuple[list[OpenAIMessage], bytes]:
        """The messages new to the session and the upstream's body. The message list the
        body is made of is not kept: held across the upstream call, a window's worth of
        references per call in flight would be walked by every young collection of the
        cyclic garbage collector."""
        assembly = history.assemble(
            call.chat.messages,
            loaded.history,
            self._settings.history_token_budget,
            from_session_start=loaded.from_session_start,
            recalled=[recall_message(recalled)] if recalled else [],
            stored_tokens=loaded.history_tokens,
        )
        body = encode_body(call.chat.parameters, assembly.upstream_messages, stream=stream)
        return assembly.new_messages, body

    def _timeout(self, rpc: Context) -> float:
        """The caller's deadline, a little early, so our own status reaches the caller."""
        remaining = rpc.time_remaining()
        if remaining is None:
            return self._upstream.default_timeout
        return max(remaining - DEADLINE_MARGIN_SECONDS, 0.001)

    def _stream_limit(self, rpc: Context) -> float | None:
        """How long a stream may run in all: bounded by the server when the caller is not."""
        return self._settings.max_stream_duration if rpc.time_remaining() is None else None

    def _turn(
        self, call: PreparedCall, new: list[OpenAIMessage], reply: dict[str, Any]
    ) -> list[NewMessage]:
        """The messages the call stores: its new ones and the reply, with token counts."""
        encoding = encoding_for(call.chat.model)
        turn = [to_record(message, encoding) for message in new]
        turn.append(to_record(from_reply(reply), encoding))
        return turn

    async def _store(
        self,
        call: PreparedCall,
        loaded: LoadedSession,
        new: list[OpenAIMessage],
        reply: dict[str, Any],
        response: str,
    ) -> SessionRecord:
        # A full-history resend is a large request with a small turn: the turn decides.
        heavy = call.heavy and _is_large(new)
        turn = await offload(heavy, self._turn, call, new, reply)
        completion = None
        if call.request_id is not None and call.claim_owner is not None:
            # A result too large to send again is not kept: a retry is told where the turn is.
            kept = response if len(response) <= self._settings.max_message_bytes else None
            completion = Completion(
                call.request_id, call.claim_owner, kept, self._settings.idempotency_retention
            )
        return await self._turns.store_turn(
            call.tenant_id,
            call.attribution,
            loaded,
            turn,
            idle_seconds=self._settings.session_idle_timeout,
            completion=completion,
            heavy=heavy,
        )

    async def _run_complete(
        self, call: PreparedCall, rpc: Context, loaded: LoadedSession | None
    ) -> chat_pb2.CompleteResponse:
        loaded, new, body, recalled = await self._load_and_assemble(call, loaded, stream=False)
        async with asyncio.timeout(self._call_limit(rpc)):
            with self._foreground.waiting():
                text, parsed = await self._upstream.complete(body, self._timeout(rpc))
        # Checked before anything is stored: the reply converts, and it can be sent with
        # the session it is stored in (added once the turn is).
        response = chat_pb2.CompleteResponse(
            completion=completion_pb(parsed),
            completion_json=text,
            recalled_memories=[memory_pb(memory) for memory in recalled],
        )
        self._check_sendable(response, reserve=SESSION_BYTES_BOUND)
        record = await self._store(call, loaded, new, _choice_zero(parsed), text)
        response.session.CopyFrom(session_pb(record))
        return response

    def _call_limit(self, rpc: Context) -> float | None:
        """How long a unary upstream call may take in all when the caller set no deadline
        (the SDK's timeout bounds each read, not a reply that trickles)."""
        return self._upstream.default_timeout if rpc.time_remaining() is None else None

    def _check_sendable(self, response: Message, reserve: int = 0) -> None:
        """Refuse a response larger than a message may be (with `reserve` bytes to come)."""
        size = response.ByteSize() + reserve
        if size > self._settings.max_message_bytes:
            raise ReplyTooLarge(size, self._settings.max_message_bytes)

    async def _run_stream(
        self, call: PreparedCall, rpc: Context, loaded: LoadedSession | None
    ) -> AsyncIterator[chat_pb2.StreamCompleteResponse]:
        loaded, new, body, recalled = await self._load_and_assemble(call, loaded, stream=True)
        yield chat_pb2.StreamCompleteResponse(
            session=session_pb(self._session(call, loaded)),
            recalled_memories=[memory_pb(memory) for memory in recalled],
        )
        reply = StreamAssembly()
        held: list[chat_pb2.StreamCompleteResponse] = []
        chunks = self._upstream.stream(body, self._timeout(rpc))
        with self._foreground.waiting():  # relaying is waiting on the upstream, mostly
            async for text, chunk in bounded(chunks, self._stream_limit(rpc)):
                reply.add(chunk)
                response = chat_pb2.StreamCompleteResponse(chunk=chunk_pb(chunk), chunk_json=text)
                self._check_sendable(response)
                if reply.finished or held:
                    # From the finish reason on, chunks wait until the turn is stored: a client
                    # that has seen the end of the stream finds the turn in the session.
                    held.append(response)
                else:
                    yield response
        if not reply.finished:
            raise broken_stream("it ended without a finish reason")
        # The request id keeps the assembled completion, not the chunks: a replay re-chunks it.
        await self._store(call, loaded, new, reply.reply(), json.dumps(reply.completion()))
        for response in held:
            yield response

    @staticmethod
    def _session(call: PreparedCall, loaded: LoadedSession) -> SessionRecord:
        """The session as it stands before the turn; a new one exists once the turn is stored."""
        if loaded.record is not None:
            return loaded.record
        now = datetime.now(UTC)
        return SessionRecord(
            id=loaded.session_id,
            tenant_id=call.tenant_id,
            attribution=call.attribution,
            create_time=now,
            update_time=now,
            message_count=0,
        )

    # -- idempotency -----------------------------------------------------------------------

    async def _claim(
        self, call: PreparedCall, kind: str, rpc: Context, *, stream: bool
    ) -> tuple[Claim, LoadedSession | None]:
        """The call's claim of its request id, waiting while an earlier call holds it; with
        it, the session's context when the call recalls no memories (they are searched
        beside the load) and the first claim was this call's."""
        assert call.request_id is not None
        longest = self._stream_limit(rpc) if stream else None
        lease = (longest or self._timeout(rpc)) + LEASE_MARGIN_SECONDS
        if call.recall is None:
            claiming = self._requests.claiming(
                call.tenant_id, call.request_id, kind, call.fingerprint, lease
            )
            try:
                claim, loaded = await self._turns.claim_and_load(
                    claiming,
                    call.tenant_id,
                    call.attribution,
                    call.session_id,
                    **self._load_target(call),
                )
            except BaseException:  # the claim may be made: a retry must not wait for it
                self._releases.release(call.tenant_id, call.request_id, claiming.owner)
                raise
            if claim.state is not ClaimState.IN_FLIGHT:
                return claim, loaded
        claim = await self._requests.settled_claim(
            call.tenant_id, call.request_id, kind, call.fingerprint, lease
        )
        return claim, None

    def _release(self, call: PreparedCall) -> None:
        """Give back the claim of a failed call, in the background (it must survive the
        call's cancellation; the server waits for it at shutdown)."""
        self._releases.release(call.tenant_id, call.request_id, call.claim_owner)

    async def _releasing_on_failure(self, call: PreparedCall, work: Awaitable[T]) -> T:
        try:
            return await work
        except BaseException:
            self._release(call)
            raise

    async def _stored_session(self, call: PreparedCall, claim: Claim) -> SessionRecord:
        if claim.session_id is None:
            raise SessionNotFound("")
        session = await self._sessions.get(call.tenant_id, claim.session_id)
        if claim.response is None:
            raise ResultNotKept(call.request_id or "", session.id)
        return session

    async def _replay_complete(self, call: PreparedCall, claim: Claim) -> chat_pb2.CompleteResponse:
        session = await self._stored_session(call, claim)
        text = claim.response or "{}"
        return chat_pb2.CompleteResponse(
            session=session_pb(session),
            completion=completion_pb(json.loads(text)),
            completion_json=text,
            replayed=True,
        )

    async def _replay_stream(
        self, call: PreparedCall, claim: Claim
    ) -> AsyncIterator[chat_pb2.StreamCompleteResponse]:
        session = await self._stored_session(call, claim)
        yield chat_pb2.StreamCompleteResponse(session=session_pb(session), replayed=True)
        kept = json.loads(claim.response or "{}")
        # Records written before the lean form kept every raw chunk as a list of texts.
        texts = kept if isinstance(kept, list) else [json.dumps(c) for c in rechunk(kept)]
        for text in texts:
            yield chat_pb2.StreamCompleteResponse(
                chunk=chunk_pb(json.loads(text)), chunk_json=text, replayed=True
            )


__all__ = ["ChatService"]
