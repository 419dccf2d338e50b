"""grpc.health.v1 and what clients see while the database is away (PostgreSQL via a proxy)."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from memori_proto.v1 import common_pb2, session_pb2
from memori_proto.v1.session_pb2_grpc import SessionServiceStub
from sqlalchemy.engine import make_url

from tests.conftest import make_settings
from tests.in_process import InProcessServer
from tests.rpc_errors import call_fails
from tests.tcp_proxy import TcpProxy

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_health_reports_serving_for_server_and_service(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "memori.v1.SessionService"):
        response = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == SERVING
    call_fails(
        lambda: health.Check(health_pb2.HealthCheckRequest(service="no.such.Service")),
        grpc.StatusCode.NOT_FOUND,
    )


@pytest.mark.postgres
def test_database_outage_is_unavailable_and_not_serving_then_recovers(
    fresh_postgres_url: str,
) -> None:
    url = make_url(fresh_postgres_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    server = InProcessServer(make_settings(proxied, health_check_interval=0.2))
    try:
        with grpc.insecure_channel(server.target) as channel:
            sessions = SessionServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            request = session_pb2.ResetRequest(
                attribution=common_pb2.Attribution(entity_id="outage")
            )

            def status() -> int:
                return int(health.Check(health_pb2.HealthCheckRequest()).status)

            session_id = sessions.Reset(request).session.id
            get = session_pb2.GetRequest(session_id=session_id)
            assert sessions.Get(get).session.id == session_id
            proxy.cut()
            failed = call_fails(lambda: sessions.Reset(request), grpc.StatusCode.UNAVAILABLE)
            assert failed.reason == "DATABASE_UNAVAILABLE"
            assert "retry" in failed.message
            failed = call_fails(lambda: sessions.Get(get), grpc.StatusCode.UNAVAILABLE)
            assert failed.reason == "DATABASE_UNAVAILABLE"
            assert eventually(lambda: status() == NOT_SERVING)
            proxy.resume()
            assert eventually(lambda: status() == SERVING)
            # Connections that died with the outage are replaced, not handed to callers.
            assert sessions.Get(get).session.id == session_id
            assert sessions.Reset(request).session.id
    finally:
        server.close()
        proxy.close()
