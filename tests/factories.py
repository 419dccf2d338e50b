"""Request builders with unique attributions, so tests sharing a server never collide."""

from __future__ import annotations

import uuid

from memori_proto.v1 import common_pb2


def attribution(process_id: str = "agent") -> common_pb2.Attribution:
    return common_pb2.Attribution(entity_id=f"user-{uuid.uuid4().hex[:12]}", process_id=process_id)


def new_id() -> str:
    return str(uuid.uuid4())
