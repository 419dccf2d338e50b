"""What a failed RPC carried: code, message and the google.rpc rich error details."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


@dataclass(frozen=True, slots=True)
class CallStatus:
    code: grpc.StatusCode
    message: str
    reason: str = ""
    """ErrorInfo.reason, e.g. UPSTREAM_ERROR or SESSION_ATTRIBUTION_MISMATCH."""
    metadata: dict[str, str] = field(default_factory=dict)
    """ErrorInfo.metadata; upstream failures carry upstream_status, upstream_message, ..."""
    retry_after: float | None = None
    """RetryInfo.retry_delay in seconds, when the service knows it."""
    violations: tuple[tuple[str, str], ...] = ()
    """BadRequest field violations as (field, description)."""

    @property
    def upstream_status(self) -> int | None:
        text = self.metadata.get("upstream_status", "")
        return int(text) if text.isdigit() else None


def read_status(error: grpc.RpcError) -> CallStatus:
    """Decode a failed call; works for sync and grpc.aio errors alike."""
    code = error.code() if isinstance(error, grpc.Call | grpc.aio.AioRpcError) else None
    if code is None:
        return CallStatus(grpc.StatusCode.UNKNOWN, str(error))
    message = error.details() or ""
    status = _rich_status(error)
    if status is None:
        return CallStatus(code, message)
    reason, metadata, retry_after = "", {}, None
    violations: list[tuple[str, str]] = []
    for packed in status.details:
        if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            packed.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
        elif packed.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            packed.Unpack(retry)
            retry_after = retry.retry_delay.ToTimedelta().total_seconds()
        elif packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            packed.Unpack(bad)
            violations.extend((item.field, item.description) for item in bad.field_violations)
    return CallStatus(code, message, reason, metadata, retry_after, tuple(violations))


def _rich_status(error: grpc.RpcError) -> status_pb2.Status | None:
    try:
        # Duck-typed: grpc.aio errors have the same code/details/trailing_metadata accessors.
        status: status_pb2.Status | None = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:  # details that disagree with the status: keep the code alone
        return None
    return status
