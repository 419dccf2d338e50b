"""A request's fingerprint (`services/fingerprint.py`): the sha256 of its deterministic
serialization, each call starting from an empty digest."""

from __future__ import annotations

import hashlib

from memori_proto.v1 import chat_pb2, common_pb2
from memori_server.services.fingerprint import request_fingerprint


def _request(text: str) -> chat_pb2.CompleteRequest:
    request = chat_pb2.CompleteRequest(
        attribution=common_pb2.Attribution(entity_id="user", process_id="agent"),
        request_id="request-1",
    )
    request.request.model = "gpt-4o-mini"
    message = request.request.messages.add()
    message.content = text
    return request


def test_the_fingerprint_is_the_sha256_of_the_deterministic_serialization() -> None:
    for text in ("hello", "hello", "another", ""):
        request = _request(text)
        expected = hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()
        assert request_fingerprint(request) == expected
    assert request_fingerprint(_request("a")) != request_fingerprint(_request("b"))
