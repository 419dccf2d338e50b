"""Optional TLS and the Prometheus endpoint, through real channels and HTTP."""

from __future__ import annotations

import ipaddress
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from memori_proto.v1 import common_pb2, session_pb2
from memori_proto.v1.chat_pb2_grpc import ChatServiceStub
from memori_proto.v1.session_pb2_grpc import SessionServiceStub
from pydantic import ValidationError

from standin_upstream import StandinThread
from tests.chat_calls import stream, user
from tests.conftest import make_settings
from tests.factories import attribution, new_id
from tests.in_process import InProcessServer
from tests.rpc_errors import call_fails

RESET = session_pb2.ResetRequest(attribution=common_pb2.Attribution(entity_id="tls-user"))


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "server.crt", directory / "server.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[InProcessServer, bytes]]:
    cert_file, key_file = self_signed(tmp_path)
    settings = make_settings(
        f"sqlite:///{tmp_path / 'tls.db'}", tls_cert_file=cert_file, tls_key_file=key_file
    )
    server = InProcessServer(settings)
    yield server, cert_file.read_bytes()
    server.close()


def test_tls_server_serves_trusting_clients_only(
    tls_server: tuple[InProcessServer, bytes],
) -> None:
    server, certificate = tls_server
    credentials = grpc.ssl_channel_credentials(root_certificates=certificate)
    with grpc.secure_channel(f"localhost:{server.port}", credentials) as channel:
        assert SessionServiceStub(channel).Reset(RESET).session.id
    with grpc.insecure_channel(server.target) as plaintext:
        call_fails(
            lambda: SessionServiceStub(plaintext).Reset(RESET, timeout=5),
            grpc.StatusCode.UNAVAILABLE,
        )


def test_tls_needs_both_files(tmp_path: Path) -> None:
    cert_file, _ = self_signed(tmp_path)
    with pytest.raises(ValidationError, match="give both or neither"):
        make_settings(f"sqlite:///{tmp_path / 'x.db'}", tls_cert_file=cert_file)


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def _sample(text: str, name: str, **labels: str) -> float:
    wanted = {f'{key}="{value}"' for key, value in labels.items()}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            found = set(line[len(name) + 1 : line.index("}")].split(","))
            if wanted <= found:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_rpcs_by_method_and_code(tmp_path: Path, upstream: StandinThread) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path / 'm.db'}",
        metrics_listen="127.0.0.1:0",
        upstream_base_url=upstream.base_url,
    )
    server = InProcessServer(settings)
    try:
        metrics = server.server.metrics_port
        assert metrics
        before = _scrape(metrics)
        with grpc.insecure_channel(server.target) as channel:
            stub = SessionServiceStub(channel)
            stub.Reset(RESET)
            stub.Reset(RESET)
            call_fails(
                lambda: stub.Get(session_pb2.GetRequest(session_id=new_id())),
                grpc.StatusCode.NOT_FOUND,
            )
            call_fails(
                lambda: stub.Get(session_pb2.GetRequest(session_id="bad")),
                grpc.StatusCode.INVALID_ARGUMENT,
            )
            chat = ChatServiceStub(channel)
            stream(chat, attribution(), user("counted"))
            call_fails(lambda: stream(chat, attribution()), grpc.StatusCode.INVALID_ARGUMENT)
        after = _scrape(metrics)
        handled = "grpc_server_handled_total"
        service = "memori.v1.SessionService"
        for method, code, expected in [
            ("Reset", "OK", 2),
            ("Get", "NOT_FOUND", 1),
            ("Get", "INVALID_ARGUMENT", 1),
        ]:
            labels = {"grpc_service": service, "grpc_method": method, "grpc_code": code}
            grown = _sample(after, handled, **labels) - _sample(before, handled, **labels)
            assert grown == expected, (method, code)
        for code in ("OK", "INVALID_ARGUMENT"):
            labels = {"grpc_type": "server_stream", "grpc_method": "StreamComplete"}
            assert _sample(after, handled, grpc_code=code, **labels) == 1, code
        assert _sample(after, "grpc_server_handling_seconds_count", grpc_method="Reset") >= 2
    finally:
        server.close()
