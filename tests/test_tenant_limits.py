"""Fairness: per-tenant concurrency and rate, RPC concurrency, stream duration, model lists."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any

import grpc
import openai
import pytest
from google.rpc import error_details_pb2
from memori_client import Memori
from memori_proto.v1 import chat_pb2, chat_pb2_grpc, session_pb2, session_pb2_grpc

from standin_upstream import StandinThread
from tests.chat_calls import chat_request, complete, open_stream, stored, user
from tests.client_support import ask, sync_client
from tests.conftest import make_settings
from tests.factories import attribution
from tests.in_process import InProcessServer
from tests.rpc_errors import CallFailed, call_fails

ACME = "acme-key-5d41402abc4b2a76b9719d911017c592"
GLOBEX = "globex-key-7d793037a0760186574b0282f2f435e7"
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def bearer(key: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {key}"),)


@pytest.fixture
def limited(
    request: pytest.FixtureRequest, database_url: str, upstream: StandinThread
) -> Iterator[InProcessServer]:
    """A server with two tenants and the settings the test gives as its parameter."""
    overrides: dict[str, Any] = request.param
    server = InProcessServer(
        make_settings(
            database_url,
            upstream_base_url=upstream.base_url,
            api_keys=f"acme={ACME},globex={GLOBEX}",
            **overrides,
        )
    )
    upstream.clear()
    yield server
    server.close()
    upstream.clear()


def _retry_delay(failed: CallFailed) -> float:
    retry = failed.detail(error_details_pb2.RetryInfo)
    return float(retry.retry_delay.ToTimedelta().total_seconds())


@pytest.mark.parametrize("limited", [{"tenant_max_concurrent_completions": 2}], indirect=True)
def test_a_tenant_over_its_concurrency_is_refused_and_others_are_not(
    limited: InProcessServer, upstream: StandinThread
) -> None:
    upstream.script({"stall": True}, {"stall": True})
    with grpc.insecure_channel(limited.target) as channel:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        held = [
            open_stream(chat, attribution(), user("slow"), metadata=bearer(ACME)) for _ in range(2)
        ]
        for call in held:
            next(iter(call))  # the session message: the call is running
        upstream.wait_for_requests(2)
        failed = call_fails(
            lambda: complete(chat, attribution(), user("third"), metadata=bearer(ACME)),
            RESOURCE_EXHAUSTED,
        )
        assert failed.reason == "TENANT_CONCURRENCY_LIMITED"
        assert _retry_delay(failed) > 0
        # Another tenant has slots of its own.
        assert complete(chat, attribution(), user("other"), metadata=bearer(GLOBEX)).completion.id
        for call in held:
            call.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leaves it untyped
        # The slots come back when calls end.
        deadline = time.monotonic() + 10
        while True:
            try:
                complete(chat, attribution(), user("again"), metadata=bearer(ACME))
                break
            except grpc.RpcError:
                assert time.monotonic() < deadline, "slots were not released"
                time.sleep(0.05)


@pytest.mark.parametrize(
    "limited",
    [{"tenant_completions_per_second": 2, "tenant_completions_burst": 2}],
    indirect=True,
)
def test_a_tenant_over_its_rate_gets_retry_info_and_the_client_waits_it_out(
    limited: InProcessServer,
) -> None:
    with grpc.insecure_channel(limited.target) as channel:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        for _ in range(2):
            complete(chat, attribution(), user("burst"), metadata=bearer(ACME))
        failed = call_fails(
            lambda: complete(chat, attribution(), user("too fast"), metadata=bearer(ACME)),
            RESOURCE_EXHAUSTED,
        )
        assert failed.reason == "TENANT_RATE_LIMITED"
        assert 0 < _retry_delay(failed) <= 0.5
    # The Python client: openai.RateLimitError, and with retries it waits and succeeds.
    eager, patient = sync_client(), sync_client(max_retries=3)
    with Memori(limited.target, api_key=ACME).attribution("rate-user") as memori:
        memori.llm.register(eager)
        with pytest.raises(openai.RateLimitError) as caught:
            [ask(eager, "hello") for _ in range(3)]  # at most 2 fit in the burst
        assert caught.value.response.headers.get("retry-after-ms")
    with Memori(limited.target, api_key=ACME).attribution("rate-user-2") as memori:
        memori.llm.register(patient)
        answers = [ask(patient, f"hello {n}") for n in range(4)]
        assert answers == [f"echo: hello {n}" for n in range(4)]


@pytest.mark.parametrize("limited", [{"max_concurrent_rpcs": 2}], indirect=True)
def test_the_server_refuses_rpcs_beyond_max_concurrent_rpcs(
    limited: InProcessServer, upstream: StandinThread
) -> None:
    upstream.script({"stall": True}, {"stall": True})
    with grpc.insecure_channel(limited.target) as channel:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        held = [
            open_stream(chat, attribution(), user("slow"), metadata=bearer(ACME)) for _ in range(2)
        ]
        for call in held:
            next(iter(call))
        sessions = session_pb2_grpc.SessionServiceStub(channel)
        call_fails(
            lambda: sessions.Reset(
                session_pb2.ResetRequest(attribution=attribution()), metadata=bearer(ACME)
            ),
            RESOURCE_EXHAUSTED,
        )
        client = sync_client()
        with Memori(limited.target, api_key=ACME).attribution("u") as memori:
            memori.llm.register(client)
            with pytest.raises(openai.RateLimitError):  # not a 413: nothing was too large
                ask(client, "refused")
        for call in held:
            call.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leaves it untyped


@pytest.mark.parametrize("limited", [{"max_stream_duration": 0.5}], indirect=True)
def test_a_stream_without_deadline_is_cut_at_the_servers_maximum(
    limited: InProcessServer, upstream: StandinThread
) -> None:
    upstream.script({"chunk_delay": 0.3})
    who = attribution()
    with grpc.insecure_channel(limited.target) as channel:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        request_stream = chat.StreamComplete(
            _stream_request(who, "trickle"), metadata=bearer(ACME)
        )  # no timeout: the server bounds it
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            list(request_stream)
        failed = CallFailed(caught.value)
        assert failed.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert failed.reason == "UPSTREAM_TIMEOUT"
        assert time.monotonic() - started < 5
        sessions = session_pb2_grpc.SessionServiceStub(channel)
        call_fails(
            lambda: sessions.Get(session_pb2.GetRequest(attribution=who), metadata=bearer(ACME)),
            grpc.StatusCode.NOT_FOUND,
        )


def _stream_request(who: Any, text: str) -> chat_pb2.StreamCompleteRequest:
    return chat_pb2.StreamCompleteRequest(attribution=who, request=chat_request(user(text)))


@pytest.mark.parametrize(
    "limited", [{"allowed_models": "acme=gpt-4o*, *=llama-3.1-8b"}], indirect=True
)
def test_models_outside_a_tenants_allow_list_are_permission_denied(
    limited: InProcessServer,
) -> None:
    with grpc.insecure_channel(limited.target) as channel:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        assert complete(chat, attribution(), user("hi"), metadata=bearer(ACME)).completion.id
        failed = call_fails(
            lambda: complete(
                chat, attribution(), user("hi"), model="o3-pro", metadata=bearer(ACME)
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        assert failed.reason == "MODEL_NOT_ALLOWED"
        assert "o3-pro" in failed.message
        # globex has no entries of its own: the `*` entry applies.
        call_fails(
            lambda: complete(chat, attribution(), user("hi"), metadata=bearer(GLOBEX)),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        complete(chat, attribution(), user("hi"), model="llama-3.1-8b", metadata=bearer(GLOBEX))
    client = sync_client()
    with Memori(limited.target, api_key=ACME).attribution("u") as memori:
        memori.llm.register(client)
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(
                model="o3-pro", messages=[{"role": "user", "content": "x"}]
            )


def test_concurrent_calls_of_one_tenant_within_the_limit_all_succeed(
    database_url: str, upstream: StandinThread
) -> None:
    """The default limits leave room for a busy app: 64 concurrent calls, all answered."""
    server = InProcessServer(
        make_settings(
            database_url, upstream_base_url=upstream.base_url, tenant_completions_per_second=200
        )
    )
    try:
        with grpc.insecure_channel(server.target) as channel:
            chat = chat_pb2_grpc.ChatServiceStub(channel)
            sessions = session_pb2_grpc.SessionServiceStub(channel)
            who = attribution()
            first = complete(chat, who, user("start"))
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                replies = list(
                    pool.map(
                        lambda n: complete(chat, who, user(f"m{n}"), session_id=first.session.id),
                        range(64),
                    )
                )
            assert all(reply.completion.id for reply in replies)
            assert len(stored(sessions, first.session.id)) == 130
    finally:
        server.close()
