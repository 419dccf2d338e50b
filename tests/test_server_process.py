"""`memori-server` as users run it: a subprocess, its flags, its log, SIGTERM."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from memori_proto.v1 import common_pb2, session_pb2
from memori_proto.v1.session_pb2_grpc import SessionServiceStub
from memori_server.config import Settings
from sqlalchemy.engine import make_url

from tests.server_process import SERVER_BIN, ServerProcess


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SERVER_BIN), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
        check=False,
    )


def reset_request(entity: str) -> session_pb2.ResetRequest:
    return session_pb2.ResetRequest(attribution=common_pb2.Attribution(entity_id=entity))


def test_help_documents_every_setting_with_its_variable() -> None:
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for name in Settings.model_fields:
        assert f"--{name.replace('_', '-')}" in text
        assert f"MEMORI_{name.upper()}" in text
    assert "127.0.0.1:50051" in text


def test_sigterm_lets_in_flight_calls_finish(tmp_path: Path) -> None:
    database = tmp_path / "memori.db"
    with ServerProcess(f"sqlite:///{database}", "--shutdown-grace", "10") as server:
        channel = grpc.insecure_channel(server.target)
        stub = SessionServiceStub(channel)
        stub.Reset(reset_request("warm-up"))
        # Hold SQLite's write lock, so the next Reset is stuck inside the server.
        blocker = sqlite3.connect(database, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        outcome: dict[str, object] = {}

        def in_flight() -> None:
            try:
                outcome["session"] = stub.Reset(reset_request("in-flight"), timeout=30).session
            except grpc.RpcError as error:
                outcome["error"] = error

        caller = threading.Thread(target=in_flight)
        caller.start()
        time.sleep(1.5)  # generous: the call must be inside the server, even on a busy host
        server.signal(signal.SIGTERM)
        time.sleep(0.5)
        assert server.process.poll() is None, "server exited with a call in flight"
        blocker.execute("COMMIT")
        blocker.close()
        caller.join(30)
        assert "error" not in outcome, outcome.get("error")
        assert isinstance(outcome["session"], session_pb2.Session)
        assert server.wait(30) == 0
        channel.close()
    assert "shutting down" in server.log
    assert "memori-server stopped" in server.log
    rows = (
        sqlite3.connect(database)
        .execute("SELECT count(*) FROM sessions WHERE entity_id = 'in-flight'")
        .fetchone()
    )
    assert rows == (1,)


def test_sigint_stops_an_idle_server(tmp_path: Path) -> None:
    with ServerProcess(f"sqlite:///{tmp_path / 'm.db'}") as server:
        server.signal(signal.SIGINT)
        assert server.wait(15) == 0


def test_default_database_is_a_file_in_the_working_directory(tmp_path: Path) -> None:
    with ServerProcess(None, cwd=tmp_path) as server:
        with grpc.insecure_channel(server.target) as channel:
            SessionServiceStub(channel).Reset(reset_request("default-db"))
        assert server.stop() == 0
    assert (tmp_path / "memori.db").exists()
    assert f"database=sqlite:///{tmp_path / 'memori.db'}" in server.log


def test_listen_port_zero_is_reported_in_the_log(tmp_path: Path) -> None:
    with ServerProcess(f"sqlite:///{tmp_path / 'm.db'}", "--log-format", "json") as server:
        assert server.port > 0
        assert f'"address": "127.0.0.1:{server.port}"' in server.log


def test_port_in_use_fails_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--database-url",
            f"sqlite:///{tmp_path / 'm.db'}",
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--database-url", "mysql://root@localhost/db"], "unsupported database 'mysql'"),
        (
            ["--database-url", "postgresql://memori:s3cret-pw@127.0.0.1:1/memori"],
            "cannot use database postgresql://memori:***@127.0.0.1:1/memori",
        ),
    ],
)
def test_database_problems_fail_with_a_clear_message(args: list[str], expected: str) -> None:
    result = run_cli("serve", "--listen", "127.0.0.1:0", *args)
    assert result.returncode == 1
    assert expected in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_invalid_configuration_from_the_environment_exits_2(tmp_path: Path) -> None:
    result = run_cli("serve", env={"MEMORI_LISTEN": "localhost", "PATH": "/usr/bin"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr
    assert "listen" in result.stderr


def test_missing_server_extra_is_explained() -> None:
    """A base install (`pip install memori-grpc`) has no SQLAlchemy: say how to fix that."""
    probe = (
        "import sys; sys.modules['sqlalchemy'] = None; "
        "from memori_server.entry import main; sys.exit(main())"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "pip install 'memori-grpc[server]'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.postgres
def test_log_masks_the_database_password(fresh_postgres_url: str) -> None:
    # Trust authentication ignores the password, so the server starts with it.
    url = make_url(fresh_postgres_url).set(password="s3cret-pw")
    with ServerProcess(url.render_as_string(hide_password=False)) as server:
        pass
    assert "database=postgresql://" in server.log
    assert ":***@" in server.log
    assert "s3cret-pw" not in server.log
