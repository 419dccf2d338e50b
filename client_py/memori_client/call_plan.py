"""One `chat.completions.create(...)` call, decided before any RPC: what, for whom, how long."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from memori_proto.v1 import chat_pb2, common_pb2

from memori_client import request_pb
from memori_client.errors import UnsupportedCall

_RAW_RESPONSE_HEADER = "x-stainless-raw-response"


@dataclass(frozen=True, slots=True)
class CallPlan:
    session_id: str
    attribution: common_pb2.Attribution
    request: chat_pb2.ChatCompletionRequest
    stream: bool
    timeout: float | None
    """The gRPC deadline of each attempt, in seconds; None waits as long as it takes."""
    max_retries: int
    request_id: str
    """Shared by every attempt, so a retry is answered from the first success. Empty when
    the client does not retry: the service's idempotency record costs a write per call."""
    recall: chat_pb2.RecallOptions | None = None
    """Long-term memory for the call (`Memori(recall=...)`); None: the server's default."""

    def unary(self) -> chat_pb2.CompleteRequest:
        request = chat_pb2.CompleteRequest(
            session_id=self.session_id,
            attribution=self.attribution,
            request_id=self.request_id,
            request=self.request,
        )
        if self.recall is not None:
            request.recall.CopyFrom(self.recall)
        return request

    def streaming(self) -> chat_pb2.StreamCompleteRequest:
        request = chat_pb2.StreamCompleteRequest(
            session_id=self.session_id,
            attribution=self.attribution,
            request_id=self.request_id,
            request=self.request,
        )
        if self.recall is not None:
            request.recall.CopyFrom(self.recall)
        return request


def plan_call(
    arguments: dict[str, Any],
    *,
    session_id: str,
    attribution: common_pb2.Attribution,
    default_timeout: float | None,
    client: openai.OpenAI | openai.AsyncOpenAI,
    recall: chat_pb2.RecallOptions | None = None,
) -> CallPlan:
    """Raises before any RPC for what cannot be sent: TypeError/ValueError/UnsupportedCall."""
    params = dict(arguments)
    headers = params.pop("extra_headers", None) or {}
    if any(name.lower() == _RAW_RESPONSE_HEADER for name in headers):
        raise UnsupportedCall(
            "with_raw_response / with_streaming_response cannot go through memori-grpc: "
            "there is no HTTP response; call chat.completions.create(...) itself"
        )
    params.pop("extra_query", None)  # HTTP-only options: the service talks to the upstream
    params.update(params.pop("extra_body", None) or {})
    timeout = params.pop("timeout", openai.NOT_GIVEN)
    stream = params.pop("stream", False)
    missing = [name for name in ("model", "messages") if name not in params]
    if missing:
        raise TypeError(f"create() missing required keyword argument(s): {', '.join(missing)}")
    model, messages = params.pop("model"), params.pop("messages")
    max_retries = max(0, int(client.max_retries))
    return CallPlan(
        session_id=session_id,
        attribution=attribution,
        request=request_pb.build(model, messages, params),
        stream=request_pb.given(stream) and bool(stream),
        timeout=_seconds(timeout)
        if request_pb.given(timeout)
        else _default(default_timeout, client),
        max_retries=max_retries,
        request_id=str(uuid.uuid4()) if max_retries else "",
        recall=recall,
    )


def _default(
    default_timeout: float | None, client: openai.OpenAI | openai.AsyncOpenAI
) -> float | None:
    return default_timeout if default_timeout is not None else _seconds(client.timeout)


def _seconds(timeout: object) -> float | None:
    if timeout is None or isinstance(timeout, openai.NotGiven | openai.Omit):
        return None
    if isinstance(timeout, int | float):
        return float(timeout)
    if isinstance(timeout, httpx2.Timeout):  # the longest wait the app allowed any phase
        phases = [t for t in (timeout.read, timeout.write, timeout.connect, timeout.pool) if t]
        return max(phases) if phases else None
    raise TypeError(f"timeout must be seconds or an httpx Timeout, not {type(timeout).__name__}")
