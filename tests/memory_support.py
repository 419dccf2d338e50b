"""Waiting for long-term memory's background index (the `memory_server` fixture is in
conftest)."""

from __future__ import annotations

import time

from memori_proto.v1 import memory_pb2, memory_pb2_grpc


def wait_indexed(stub: memory_pb2_grpc.MemoryServiceStub, timeout: float = 60.0) -> None:
    """Until everything stored so far is searchable (indexing runs in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        status = stub.GetIndexStatus(memory_pb2.GetIndexStatusRequest())
        if status.pending_message_count == 0:
            return
        assert time.monotonic() < deadline, f"still pending: {status}"
        time.sleep(0.05)
