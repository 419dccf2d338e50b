"""memori.v1.SessionService: validation, then one SessionStore call per RPC; AppendMessages,
a write like a completion's, is `services.append`."""

from __future__ import annotations

from memori_proto.v1 import common_pb2, session_pb2, session_pb2_grpc

from memori_server import page_tokens, validation
from memori_server.domain import Attribution
from memori_server.rpc_errors import Context
from memori_server.services.append import Appender
from memori_server.services.convert import message_pages, session_pb
from memori_server.services.tenancy import calling_tenant
from memori_server.storage.session_store import SessionCursor, SessionStore
from memori_server.validation import Violations

DEFAULT_SESSION_PAGE = 50
DEFAULT_MESSAGE_PAGE = 100


def _required_attribution(
    holder: session_pb2.ResetRequest
    | session_pb2.SetRequest
    | session_pb2.ListRequest
    | session_pb2.GetRequest,
    violations: Violations,
) -> Attribution:
    if not holder.HasField("attribution"):
        violations.add("attribution", "required: {entity_id, process_id}")
        return Attribution("", "")
    return _attribution(holder.attribution, violations)


def _attribution(message: common_pb2.Attribution, violations: Violations) -> Attribution:
    return validation.attribution(message.entity_id, message.process_id, "attribution", violations)


def _optional_attribution(
    request: session_pb2.GetRequest | session_pb2.DeleteRequest | session_pb2.ListMessagesRequest,
    violations: Violations,
) -> Attribution | None:
    return (
        _attribution(request.attribution, violations) if request.HasField("attribution") else None
    )


class SessionService(session_pb2_grpc.SessionServiceServicer):
    def __init__(self, store: SessionStore, idle_seconds: float, appender: Appender) -> None:
        self._store = store
        self._idle_seconds = idle_seconds
        self._appender = appender

    async def Reset(  # noqa: N802 (gRPC method names)
        self, request: session_pb2.ResetRequest, rpc: Context
    ) -> session_pb2.ResetResponse:
        violations = Violations()
        attribution = _required_attribution(request, violations)
        violations.raise_if_any()
        record = await self._store.reset(calling_tenant(), attribution)
        return session_pb2.ResetResponse(session=session_pb(record))

    async def Set(  # noqa: N802
        self, request: session_pb2.SetRequest, rpc: Context
    ) -> session_pb2.SetResponse:
        violations = Violations()
        attribution = _required_attribution(request, violations)
        session_id = validation.session_id(request.session_id, "session_id", violations)
        violations.raise_if_any()
        record, created = await self._store.set(calling_tenant(), attribution, session_id)
        return session_pb2.SetResponse(session=session_pb(record), created=created)

    async def Get(  # noqa: N802
        self, request: session_pb2.GetRequest, rpc: Context
    ) -> session_pb2.GetResponse:
        violations = Violations()
        if request.session_id:
            session_id = validation.session_id(request.session_id, "session_id", violations)
            attribution = _optional_attribution(request, violations)
            violations.raise_if_any()
            record = await self._store.get(calling_tenant(), session_id, attribution)
        else:
            if not request.HasField("attribution"):
                violations.add(
                    "session_id",
                    "give session_id, or attribution alone for the attribution's current session",
                )
            current_of = _required_attribution(request, violations)
            violations.raise_if_any()
            record = await self._store.get_current(calling_tenant(), current_of, self._idle_seconds)
        return session_pb2.GetResponse(session=session_pb(record))

    async def List(  # noqa: N802
        self, request: session_pb2.ListRequest, rpc: Context
    ) -> session_pb2.ListResponse:
        violations = Violations()
        attribution = _required_attribution(request, violations)
        limit = validation.page_size(
            request.page_size, DEFAULT_SESSION_PAGE, "page_size", violations
        )
        floor = validation.update_time_floor(
            request.min_update_time if request.HasField("min_update_time") else None,
            request.active_within if request.HasField("active_within") else None,
            violations,
        )
        violations.raise_if_any()
        tenant = calling_tenant()
        # The active_within cutoff is fixed by the first page, so later pages do not shift.
        request_fingerprint = page_tokens.fingerprint(
            tenant,
            attribution.entity_id,
            attribution.process_id,
            request.min_update_time.SerializeToString().hex(),
            request.active_within.SerializeToString().hex(),
        )
        after = None
        if request.page_token:
            position = page_tokens.decode(
                request.page_token, "sessions", request_fingerprint, "page_token"
            )
            after = SessionCursor(
                page_tokens.time_at(position, "t", "page_token"),
                page_tokens.text_at(position, "i", "page_token"),
            )
            floor = (
                page_tokens.time_at(position, "c", "page_token")
                if position.get("c") is not None
                else None
            )
        min_update_time = floor
        records, more = await self._store.list_sessions(
            tenant, attribution, min_update_time=min_update_time, after=after, limit=limit
        )
        next_token = ""
        if more and records:
            last = records[-1]
            next_token = page_tokens.encode(
                "sessions",
                request_fingerprint,
                {
                    "t": last.update_time.isoformat(),
                    "i": last.id,
                    "c": min_update_time.isoformat() if min_update_time else None,
                },
            )
        return session_pb2.ListResponse(
            sessions=[session_pb(record) for record in records], next_page_token=next_token
        )

    async def Delete(  # noqa: N802
        self, request: session_pb2.DeleteRequest, rpc: Context
    ) -> session_pb2.DeleteResponse:
        violations = Violations()
        session_id = validation.session_id(request.session_id, "session_id", violations)
        attribution = _optional_attribution(request, violations)
        violations.raise_if_any()
        deleted = await self._store.delete(calling_tenant(), session_id, attribution)
        return session_pb2.DeleteResponse(deleted_message_count=deleted)

    async def ListMessages(  # noqa: N802
        self, request: session_pb2.ListMessagesRequest, rpc: Context
    ) -> session_pb2.ListMessagesResponse:
        violations = Violations()
        session_id = validation.session_id(request.session_id, "session_id", violations)
        attribution = _optional_attribution(request, violations)
        limit = validation.page_size(
            request.page_size, DEFAULT_MESSAGE_PAGE, "page_size", violations
        )
        violations.raise_if_any()
        tenant = calling_tenant()
        request_fingerprint = page_tokens.fingerprint(tenant, session_id)
        after_sequence = 0
        if request.page_token:
            position = page_tokens.decode(
                request.page_token, "messages", request_fingerprint, "page_token"
            )
            after_sequence = page_tokens.sequence_at(position, "s", "page_token")
        stored, more = await self._store.list_messages(
            tenant, session_id, attribution, after_sequence=after_sequence, limit=limit
        )
        pages = message_pages(stored)
        page = pages[0] if pages else []
        next_token = ""
        if (more or len(pages) > 1) and page:
            next_token = page_tokens.encode(
                "messages", request_fingerprint, {"s": page[-1].sequence}
            )
        return session_pb2.ListMessagesResponse(messages=page, next_page_token=next_token)

    async def AppendMessages(  # noqa: N802
        self, request: session_pb2.AppendMessagesRequest, rpc: Context
    ) -> session_pb2.AppendMessagesResponse:
        return await self._appender.append(request, rpc)
