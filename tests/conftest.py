"""Fixtures: each database backend gets a real server on a free port, shared per module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import openai
import pytest
from memori_client import Memori
from memori_proto.v1 import chat_pb2_grpc, session_pb2_grpc
from memori_server.config import Settings

from standin_upstream import StandinThread
from tests.client_support import sync_client
from tests.databases import fresh_postgres_database, postgres_admin_url, sqlite_url
from tests.in_process import InProcessServer

VENDOR_PARAMETER = "vendor_option"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _postgres_or_skip() -> Iterator[str]:
    admin_url = postgres_admin_url()
    if admin_url is None:
        pytest.skip("set MEMORI_TEST_DATABASE_URL to run against PostgreSQL")
    with fresh_postgres_database(admin_url) as url:
        yield url


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, empty database of each backend, shared by this test run."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path_factory.mktemp("sqlite"))
    else:
        yield from _postgres_or_skip()


@pytest.fixture(params=BACKENDS)
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of each backend for one test alone."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        yield from _postgres_or_skip()


@pytest.fixture(scope="module", params=BACKENDS)
def fresh_module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A new, empty database of each backend for one test module."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path_factory.mktemp("module-sqlite"))
    else:
        yield from _postgres_or_skip()


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test; skipped without one configured."""
    yield from _postgres_or_skip()


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "listen": "127.0.0.1:0",
        "database_url": database_url,
        "shutdown_grace": 1.0,
        # The suite's servers take calls from every test at machine speed, faster than the
        # default per-tenant rate; tests/test_tenant_limits.py covers the limits themselves.
        "tenant_completions_per_second": 0,
        **overrides,
    }
    return Settings.model_validate(values)


@pytest.fixture(scope="session")
def upstream() -> Iterator[StandinThread]:
    """The stand-in OpenAI-compatible upstream every shared server talks to."""
    with StandinThread() as running:
        yield running


STORAGE_PATHS = ("fast", "threads")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Modules marked `both_storage_paths` run against a server whose storage takes its fast
    paths (event loop) and one whose every unit takes the thread path; others only the
    former, the server's default."""
    if "storage_path" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("both_storage_paths") is not None
        metafunc.parametrize(
            "storage_path",
            STORAGE_PATHS if both else STORAGE_PATHS[:1],
            indirect=True,
            scope="session",
        )


@pytest.fixture(scope="session")
def storage_path(request: pytest.FixtureRequest) -> str:
    """Which paths the shared server's storage takes: "fast" (the default) or "threads"."""
    path: str = request.param
    return path


@pytest.fixture(scope="session")
def server(
    database_url: str, storage_path: str, upstream: StandinThread
) -> Iterator[InProcessServer]:
    # An operator-allowed vendor parameter, so tests can show extra_body passing through.
    settings = make_settings(
        database_url,
        upstream_base_url=upstream.base_url,
        extra_parameters=VENDOR_PARAMETER,
        database_fast_paths=storage_path == "fast",
    )
    running = InProcessServer(settings)
    yield running
    running.close()


@pytest.fixture(scope="session")
def channel(server: InProcessServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.target) as opened:
        yield opened


@pytest.fixture
def sessions(channel: grpc.Channel) -> session_pb2_grpc.SessionServiceStub:
    return session_pb2_grpc.SessionServiceStub(channel)


@pytest.fixture
def chat(channel: grpc.Channel, upstream: StandinThread) -> chat_pb2_grpc.ChatServiceStub:
    """ChatService of the shared server; the stand-in starts each test with a clean record."""
    upstream.clear()
    return chat_pb2_grpc.ChatServiceStub(channel)


@pytest.fixture
def tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def memori(server: InProcessServer, upstream: StandinThread) -> Iterator[Memori]:
    """A Memori on the shared server for a user of its own; the stand-in starts clean."""
    upstream.clear()
    with Memori(server.target).attribution(f"user-{uuid.uuid4()}", "client-tests") as opened:
        yield opened


@pytest.fixture
def client(memori: Memori) -> openai.OpenAI:
    """A sync openai client registered with `memori` (its own base URL is a dead port)."""
    registered = sync_client()
    memori.llm.register(registered)
    return registered


@pytest.fixture(scope="module")
def memory_server(
    fresh_module_database_url: str, upstream: StandinThread
) -> Iterator[InProcessServer]:
    """A server with `--memory` on a fresh database of each backend, indexing promptly."""
    running = InProcessServer(
        make_settings(
            fresh_module_database_url,
            upstream_base_url=upstream.base_url,
            memory=True,
            memory_index_interval=0.2,
        )
    )
    yield running
    running.close()
