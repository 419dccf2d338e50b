"""`create(...)` raises the openai exceptions an app already handles; session misuse raises
the client's own; retries reuse one request id so nothing is stored twice."""

from __future__ import annotations

import uuid
from typing import Any

import openai
import pytest
from memori_client import Memori, SessionAttributionMismatch

from standin_upstream import StandinThread
from tests.chat_calls import MODEL
from tests.client_support import ask, sync_client, user
from tests.in_process import InProcessServer


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (409, openai.ConflictError),
        (422, openai.UnprocessableEntityError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_upstream_statuses_become_the_sdk_exception_classes(
    memori: Memori,
    client: openai.OpenAI,
    upstream: StandinThread,
    status: int,
    kind: type[openai.APIStatusError],
) -> None:
    upstream.script(
        {
            "fail": {
                "status": status,
                "message": f"upstream says {status}",
                "type": "some_error_type",
                "code": "some_code",
                "param": "messages",
            }
        }
    )
    with pytest.raises(kind) as caught:
        ask(client, "hello")
    error = caught.value
    assert error.status_code == status
    assert "upstream says" in error.message
    assert (error.code, error.param, error.type) == ("some_code", "messages", "some_error_type")
    assert memori.session.history() == []  # nothing of a failed call is stored


def test_a_rate_limit_carries_the_retry_delay(
    client: openai.OpenAI, upstream: StandinThread
) -> None:
    upstream.script({"fail": {"status": 429, "message": "slow down", "retry_after": 2}})
    with pytest.raises(openai.RateLimitError) as caught:
        ask(client, "hello")
    assert caught.value.response.headers["retry-after-ms"] == "2000"


def test_the_services_own_validation_is_a_bad_request_naming_the_field(
    client: openai.OpenAI,
) -> None:
    wizard: Any = {"role": "wizard", "content": "x"}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=[wizard])
    assert caught.value.param == "request.messages[0].role"
    with pytest.raises(openai.BadRequestError, match="model"):
        client.chat.completions.create(model="", messages=[user("x")])


def test_what_cannot_be_encoded_fails_before_any_call(
    client: openai.OpenAI, upstream: StandinThread
) -> None:
    with pytest.raises(ValueError, match="not a JSON number"):
        client.chat.completions.create(
            model=MODEL, messages=[user("x")], frequency_penalty=float("nan")
        )
    odd = {"role": "user", "content": "x", "cache_control": {"type": "ephemeral"}}
    with pytest.raises(ValueError, match="cache_control"):
        client.chat.completions.create(model=MODEL, messages=[odd])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="missing"):
        client.chat.completions.create(model=MODEL)  # type: ignore[call-overload]

    class Shape(openai.BaseModel):
        x: int

    with pytest.raises(TypeError, match="parse"):
        client.chat.completions.create(  # type: ignore[call-overload]
            model=MODEL, messages=[user("x")], response_format=Shape
        )
    assert upstream.requests == []


def test_a_timeout_is_an_api_timeout_error(client: openai.OpenAI, upstream: StandinThread) -> None:
    upstream.script({"stall": True})
    with pytest.raises(openai.APITimeoutError):
        ask(client, "hello", timeout=0.5)


def test_an_unreachable_service_is_a_connection_error() -> None:
    client = sync_client()
    Memori("127.0.0.1:9").attribution("user-1").llm.register(client)
    with pytest.raises(openai.APIConnectionError) as caught:
        ask(client, "hello", timeout=5)
    assert not isinstance(caught.value, openai.APITimeoutError)


def test_a_session_of_another_attribution_raises_the_clients_own_error(
    server: InProcessServer, client: openai.OpenAI, memori: Memori
) -> None:
    ask(client, "mine")
    other_client = sync_client()
    with Memori(server.target).attribution("someone-else") as other:
        other.llm.register(other_client).set_session(memori.session.id)
        with pytest.raises(SessionAttributionMismatch) as caught:
            ask(other_client, "let me in")
    assert caught.value.session_id == memori.session.id
    assert caught.value.reason == "SESSION_ATTRIBUTION_MISMATCH"


def test_retries_reuse_the_request_id_and_store_the_turn_once(
    memori: Memori, upstream: StandinThread
) -> None:
    client = sync_client(max_retries=2)
    memori.llm.register(client)
    upstream.script(
        {"fail": {"status": 503, "message": "busy"}},
        {"fail": {"status": 429, "message": "later", "retry_after": 0.05}},
    )
    assert ask(client, "third time lucky") == "echo: third time lucky"
    assert len(upstream.requests) == 3
    assert memori.session.history() == [
        {"role": "user", "content": "third time lucky"},
        {"role": "assistant", "content": "echo: third time lucky"},
    ]


def test_errors_that_retrying_cannot_fix_are_not_retried(
    memori: Memori, upstream: StandinThread
) -> None:
    client = sync_client(max_retries=3)
    memori.llm.register(client)
    upstream.script({"fail": {"status": 400, "message": "bad"}})
    with pytest.raises(openai.BadRequestError):
        ask(client, "hello")
    assert len(upstream.requests) == 1


def test_stream_failures_before_the_first_chunk_raise_from_create(
    client: openai.OpenAI, upstream: StandinThread
) -> None:
    upstream.script({"fail": {"status": 429, "message": "slow down"}})
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=MODEL, messages=[user("x")], stream=True)


def test_a_stream_that_breaks_raises_while_iterating_and_stores_nothing(
    memori: Memori, client: openai.OpenAI, upstream: StandinThread
) -> None:
    upstream.script({"cut_after_chunks": 2})
    stream = client.chat.completions.create(model=MODEL, messages=[user("x y z")], stream=True)
    received: list[Any] = []
    with pytest.raises(openai.APIConnectionError), stream:
        received.extend(stream)
    assert len(received) >= 1
    assert memori.session.history() == []


CLIENT_KEY = "client-key-0b6a1e495b0e4d0c9c386a1f0f2b8f51"


def test_api_keys_travel_with_every_call(
    database_url: str, tmp_path: Any, upstream: StandinThread
) -> None:
    from tests.conftest import make_settings

    keyed = InProcessServer(
        make_settings(
            database_url, api_keys=f"acme={CLIENT_KEY}", upstream_base_url=upstream.base_url
        )
    )
    try:
        wrong, right = sync_client(), sync_client()
        Memori(keyed.target, api_key="nope").attribution("u").llm.register(wrong)
        with pytest.raises(openai.AuthenticationError):
            ask(wrong, "hello")
        with Memori(keyed.target, api_key=CLIENT_KEY).attribution("u") as memori:
            memori.llm.register(right)
            assert ask(right, "hello") == "echo: hello"
            stream = right.chat.completions.create(model=MODEL, messages=[user("s")], stream=True)
            assert list(stream)
            assert len(memori.session.history()) == 4
    finally:
        keyed.close()


def test_tls_with_the_services_certificate(tmp_path: Any, upstream: StandinThread) -> None:
    import grpc

    from tests.conftest import make_settings
    from tests.test_tls_and_metrics import self_signed

    cert_file, key_file = self_signed(tmp_path)
    secured = InProcessServer(
        make_settings(
            f"sqlite:///{tmp_path / 'tls.db'}",
            tls_cert_file=cert_file,
            tls_key_file=key_file,
            upstream_base_url=upstream.base_url,
        )
    )
    try:
        client = sync_client()
        credentials = grpc.ssl_channel_credentials(root_certificates=cert_file.read_bytes())
        with Memori(f"localhost:{secured.port}", tls=credentials) as memori:
            memori.attribution("tls-user").llm.register(client)
            assert ask(client, "secret") == "echo: secret"
        plain = sync_client()
        Memori(f"localhost:{secured.port}").attribution("tls-user").llm.register(plain)
        with pytest.raises(openai.APIConnectionError):
            ask(plain, "no tls", timeout=5)
    finally:
        secured.close()


def test_session_ids_given_to_set_are_created_on_first_use(
    memori: Memori, client: openai.OpenAI
) -> None:
    chosen = str(uuid.uuid4())
    memori.set_session(chosen)
    ask(client, "first words")
    assert memori.session.history()[0]["content"] == "first words"


def test_a_request_over_the_services_size_limit_is_a_413(
    memori: Memori, client: openai.OpenAI, upstream: StandinThread
) -> None:
    huge = "x" * (5 * 1024 * 1024)  # the server takes 4 MiB messages by default
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=[user(huge)])
    assert caught.value.status_code == 413
    assert not isinstance(caught.value, openai.RateLimitError)
    assert upstream.requests == []
