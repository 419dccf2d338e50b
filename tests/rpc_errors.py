"""Read the google.rpc rich error details a failed call carries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status


class CallFailed:
    """A failed RPC: its status code, message and decoded details."""

    def __init__(self, error: grpc.RpcError) -> None:
        assert isinstance(error, grpc.Call)
        self.code: grpc.StatusCode = error.code()
        self.message: str = error.details() or ""
        status = rpc_status.from_call(error)
        self.details: list[Any] = []
        for packed in status.details if status is not None else []:
            for kind in (
                error_details_pb2.BadRequest,
                error_details_pb2.ErrorInfo,
                error_details_pb2.ResourceInfo,
                error_details_pb2.PreconditionFailure,
                error_details_pb2.RetryInfo,
            ):
                if packed.Is(kind.DESCRIPTOR):
                    detail = kind()
                    packed.Unpack(detail)
                    self.details.append(detail)

    def detail(self, kind: type[Any]) -> Any:
        found = [d for d in self.details if isinstance(d, kind)]
        assert found, f"no {kind.__name__} in {self.details}"
        return found[0]

    @property
    def field_violations(self) -> dict[str, str]:
        bad_request = self.detail(error_details_pb2.BadRequest)
        return {v.field: v.description for v in bad_request.field_violations}

    @property
    def reason(self) -> str:
        return str(self.detail(error_details_pb2.ErrorInfo).reason)

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self.detail(error_details_pb2.ErrorInfo).metadata)


def call_fails(call: Callable[[], object], code: grpc.StatusCode) -> CallFailed:
    """Run `call`, expect it to fail with `code`, return what it carried."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    failed = CallFailed(caught.value)
    assert failed.code == code, f"expected {code}, got {failed.code}: {failed.message}"
    return failed
