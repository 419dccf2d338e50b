"""API keys over the wire: who may call, and tenants that never see each other's sessions."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from memori_proto.v1 import chat_pb2_grpc, common_pb2, session_pb2
from memori_proto.v1.session_pb2_grpc import SessionServiceStub
from memori_server.auth import load_api_keys

from standin_upstream import StandinThread
from tests.chat_calls import complete, sent_text, stream, user
from tests.conftest import make_settings
from tests.factories import attribution, new_id
from tests.in_process import InProcessServer
from tests.rpc_errors import call_fails

ACME_KEY = "acme-secret-key-6f1c2d3e4b5a4c6d8e7f"
GLOBEX_KEY = "globex-secret-key-8091a2b3c4d54e6f"
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


def bearer(key: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {key}"),)


@pytest.fixture(scope="module")
def keyed_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, upstream: StandinThread
) -> Iterator[InProcessServer]:
    keys_file = tmp_path_factory.mktemp("keys") / "keys.txt"
    digest = hashlib.sha256(GLOBEX_KEY.encode()).hexdigest()
    keys_file.write_text(f"# tenant=key\nglobex=sha256:{digest}\n")
    settings = make_settings(
        database_url,
        api_keys=f"acme={ACME_KEY}",
        api_keys_file=keys_file,
        upstream_base_url=upstream.base_url,
    )
    server = InProcessServer(settings)
    yield server
    server.close()


@pytest.fixture
def stub(keyed_server: InProcessServer) -> Iterator[SessionServiceStub]:
    with grpc.insecure_channel(keyed_server.target) as channel:
        yield SessionServiceStub(channel)


def test_calls_without_a_valid_key_are_unauthenticated(stub: SessionServiceStub) -> None:
    request = session_pb2.ResetRequest(attribution=attribution())
    failed = call_fails(lambda: stub.Reset(request), UNAUTHENTICATED)
    assert failed.reason == "API_KEY_MISSING"
    assert "authorization: Bearer" in failed.message
    failed = call_fails(lambda: stub.Reset(request, metadata=bearer("wrong")), UNAUTHENTICATED)
    assert failed.reason == "API_KEY_INVALID"
    # Authentication comes before validation: no details leak to unknown callers.
    call_fails(lambda: stub.Get(session_pb2.GetRequest(session_id="bad")), UNAUTHENTICATED)


def test_both_header_forms_and_hashed_keys_work(stub: SessionServiceStub) -> None:
    request = session_pb2.ResetRequest(attribution=attribution())
    assert stub.Reset(request, metadata=bearer(ACME_KEY)).session.id
    assert stub.Reset(request, metadata=(("x-api-key", GLOBEX_KEY),)).session.id


def test_tenants_never_see_each_others_sessions(stub: SessionServiceStub) -> None:
    who = attribution()
    session = stub.Reset(
        session_pb2.ResetRequest(attribution=who), metadata=bearer(ACME_KEY)
    ).session
    by_id = session_pb2.GetRequest(session_id=session.id)
    assert stub.Get(by_id, metadata=bearer(ACME_KEY)).session.id == session.id
    # Another tenant: not found (never "belongs to someone else"), for every RPC.
    call_fails(lambda: stub.Get(by_id, metadata=bearer(GLOBEX_KEY)), grpc.StatusCode.NOT_FOUND)
    call_fails(
        lambda: stub.Get(session_pb2.GetRequest(attribution=who), metadata=bearer(GLOBEX_KEY)),
        grpc.StatusCode.NOT_FOUND,
    )
    call_fails(
        lambda: stub.Delete(
            session_pb2.DeleteRequest(session_id=session.id), metadata=bearer(GLOBEX_KEY)
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    call_fails(
        lambda: stub.ListMessages(
            session_pb2.ListMessagesRequest(session_id=session.id), metadata=bearer(GLOBEX_KEY)
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    listed = stub.List(session_pb2.ListRequest(attribution=who), metadata=bearer(GLOBEX_KEY))
    assert list(listed.sessions) == []
    # Even the same id and attribution in the other tenant is a separate, new session.
    other = stub.Set(
        session_pb2.SetRequest(attribution=who, session_id=session.id), metadata=bearer(GLOBEX_KEY)
    )
    assert other.created
    assert stub.Get(by_id, metadata=bearer(ACME_KEY)).session.create_time == session.create_time


def test_health_and_reflection_stay_open(keyed_server: InProcessServer) -> None:
    with grpc.insecure_channel(keyed_server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest()).status == (
            health_pb2.HealthCheckResponse.SERVING
        )


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("acme", "expected tenant=key"),
        ("bad tenant!=k", "tenant 'bad tenant!' must be"),
        (f"a={ACME_KEY},b={ACME_KEY}", "the same key is listed twice"),
    ],
)
def test_malformed_keys_stop_startup_with_a_clear_message(
    tmp_path: Path, keys: str, message: str
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'k.db'}", api_keys=keys)
    with pytest.raises(ValueError, match=message):
        load_api_keys(settings)


def test_without_keys_everyone_is_the_default_tenant(sessions: SessionServiceStub) -> None:
    session_id = new_id()
    who = common_pb2.Attribution(entity_id="anyone")
    assert sessions.Set(session_pb2.SetRequest(attribution=who, session_id=session_id)).created
    assert (
        sessions.Get(
            session_pb2.GetRequest(session_id=session_id), metadata=bearer("ignored")
        ).session.id
        == session_id
    )


@pytest.fixture
def chat(keyed_server: InProcessServer) -> Iterator[chat_pb2_grpc.ChatServiceStub]:
    with grpc.insecure_channel(keyed_server.target) as channel:
        yield chat_pb2_grpc.ChatServiceStub(channel)


def test_chat_calls_need_a_key_too_streaming_included(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread
) -> None:
    upstream.clear()
    call_fails(lambda: complete(chat, attribution(), user("hi")), UNAUTHENTICATED)
    call_fails(lambda: stream(chat, attribution(), user("hi")), UNAUTHENTICATED)
    assert upstream.requests == []


def test_tenants_never_share_chat_history_or_request_ids(
    chat: chat_pb2_grpc.ChatServiceStub, upstream: StandinThread
) -> None:
    upstream.clear()
    who, session_id, request_id = attribution(), new_id(), new_id()
    acme = complete(
        chat,
        who,
        user("acme secret: saffron"),
        session_id=session_id,
        request_id=request_id,
        metadata=bearer(ACME_KEY),
    )
    globex = complete(
        chat,
        who,
        user("globex note: cedar"),
        session_id=session_id,
        request_id=request_id,
        metadata=bearer(GLOBEX_KEY),
    )
    # The same request id in another tenant is another request, not a reuse.
    assert not globex.replayed
    assert len(upstream.requests) == 2
    stream(
        chat, who, user("what is the secret?"), session_id=session_id, metadata=bearer(GLOBEX_KEY)
    )
    assert "cedar" in sent_text(upstream)
    assert "saffron" not in sent_text(upstream)
    assert globex.session.message_count == acme.session.message_count == 2
