"""Nothing a caller sends steers the upstream: parameters by allow-list, URLs by policy,
and errors that do not name the operator's internal hosts."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import struct_pb2
from memori_proto.v1 import chat_pb2_grpc, common_pb2
from memori_server.chat.parameters import OPENAI_EXTRA_PARAMETERS, TYPED_PARAMETERS
from openai.types.chat import completion_create_params

from standin_upstream import StandinThread
from tests.chat_calls import complete, message, user
from tests.conftest import VENDOR_PARAMETER, make_settings
from tests.factories import attribution
from tests.in_process import InProcessServer
from tests.rpc_errors import call_fails

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def test_the_allow_list_is_exactly_openais_chat_completions_parameters() -> None:
    sdk = set(completion_create_params.CompletionCreateParamsBase.__annotations__)
    assert sdk - TYPED_PARAMETERS == OPENAI_EXTRA_PARAMETERS
    assert TYPED_PARAMETERS - {"stream"} <= sdk


@pytest.mark.parametrize(
    "key", ["api_base", "api_key", "base_url", "user_config", "fallbacks", "top_k", "x"]
)
def test_routing_keys_and_unknown_parameters_are_refused_before_the_upstream(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread, key: str
) -> None:
    extra = json.dumps({"logprobs": True, key: "http://10.0.0.1:4000"})
    failed = call_fails(lambda: complete(chat, attribution(), user("x"), extra_json=extra), INVALID)
    assert key in failed.field_violations["request.extra_json"]
    assert "--extra-parameters" in failed.field_violations["request.extra_json"]
    assert upstream.requests == []


def test_operator_allowed_parameters_pass(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread
) -> None:
    extra = json.dumps({VENDOR_PARAMETER: {"depth": 3}, "logprobs": True})
    complete(chat, attribution(), user("x"), extra_json=extra)
    body = upstream.requests[-1]["body"]
    assert body[VENDOR_PARAMETER] == {"depth": 3}
    assert body["logprobs"] is True


def _image(url: str, key: str = "image_url") -> common_pb2.ChatMessage:
    part = struct_pb2.Struct()
    if key == "image_url":
        part.update({"type": "image_url", "image_url": {"url": url}})
    else:
        part.update({"type": "file", "file": {key: url}})
    return common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content_parts=[part])


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://example.com/cat.png", "scheme 'http' is not allowed"),
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("gopher://x/", "scheme 'gopher'"),
        ("https://169.254.169.254/latest/meta-data/", "literal IP address"),
        ("https://[::1]/x.png", "literal IP address"),
        ("https://10.1.2.3/x.png", "literal IP address"),
        ("https://localhost/x.png", "private, loopback or link-local"),
        ("https://127.0.0.1.nip.io.invalid/x.png", "does not resolve"),
        ("https://:443/x", "has no host"),
        ("https://host:99999/x", "not a valid URL"),
    ],
)
def test_content_urls_the_upstream_would_fetch_must_be_public(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread, url: str, problem: str
) -> None:
    failed = call_fails(lambda: complete(chat, attribution(), _image(url)), INVALID)
    (field, description), *_ = failed.field_violations.items()
    assert field == "request.messages[0].content_parts[0].image_url.url"
    assert problem in description
    assert upstream.requests == [], "refused before the upstream is called"


def test_any_url_field_of_a_part_is_checked(chat: chat_pb2_grpc.ChatServiceStub) -> None:
    failed = call_fails(
        lambda: complete(chat, attribution(), _image("http://169.254.169.254/", "file_url")),
        INVALID,
    )
    assert "request.messages[0].content_parts[0].file.file_url" in failed.field_violations


def test_inline_data_urls_pass(chat: chat_pb2_grpc.ChatServiceStub) -> None:
    assert complete(chat, attribution(), _image("data:image/png;base64,AAAA")).completion.id


@pytest.fixture
def open_urls(database_url: str, upstream: StandinThread) -> Iterator[InProcessServer]:
    server = InProcessServer(
        make_settings(
            database_url,
            upstream_base_url=upstream.base_url,
            content_url_schemes="https,http,data",
            allow_private_content_urls=True,
        )
    )
    yield server
    server.close()


def test_the_operator_can_allow_private_urls_and_more_schemes(
    open_urls: InProcessServer, upstream: StandinThread
) -> None:
    with grpc.insecure_channel(open_urls.target) as channel:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        for url in ("http://10.0.0.5/cat.png", "https://localhost/x.png"):
            complete(chat, attribution(), _image(url))
            sent = upstream.requests[-1]["body"]["messages"][-1]["content"][0]
            assert sent["image_url"]["url"] == url
        call_fails(lambda: complete(chat, attribution(), _image("ftp://x/y")), INVALID)


@pytest.fixture
def unreachable(database_url: str) -> Iterator[InProcessServer]:
    """A server whose upstream's name only the operator's network would know."""
    server = InProcessServer(
        make_settings(database_url, upstream_base_url="http://llm-backend.corp.invalid:8000/v1")
    )
    yield server
    server.close()


def test_connection_errors_do_not_name_the_upstreams_host(unreachable: InProcessServer) -> None:
    with grpc.insecure_channel(unreachable.target) as channel:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        failed = call_fails(
            lambda: complete(chat, attribution(), user("x")), grpc.StatusCode.UNAVAILABLE
        )
    assert failed.reason == "UPSTREAM_UNREACHABLE"
    shown = f"{failed.message} {failed.details}"
    assert "llm-backend" not in shown
    assert "8000" not in shown


def test_a_tool_message_and_assistant_history_pass_unchanged(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread
) -> None:
    """The checks leave ordinary requests alone: a tool round trip is sent as given."""
    call = common_pb2.ToolCall(
        id="call_1", type="function", function=common_pb2.FunctionCall(name="f", arguments="{}")
    )
    complete(
        chat,
        attribution(),
        user("weather?"),
        message("assistant", tool_calls=[call]),
        message("tool", "sunny", tool_call_id="call_1"),
    )
    sent = upstream.requests[-1]["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
