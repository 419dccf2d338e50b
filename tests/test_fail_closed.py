"""Fail closed: no keys means loopback only, short keys are refused, keys reload on SIGHUP."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from memori_proto.v1 import common_pb2, session_pb2
from memori_proto.v1.session_pb2_grpc import SessionServiceStub

from tests.repo_paths import ROOT
from tests.rpc_errors import call_fails
from tests.server_process import SERVER_BIN, ServerProcess

KEY_A = "key-a-3f0c9d2e8b1a4c7d9e6f5a4b3c2d1e0f"
KEY_B = "key-b-0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`memori-server serve ...` that is expected to exit on its own."""
    return subprocess.run(
        [str(SERVER_BIN), "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def _env(**values: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MEMORI_")}
    return {**clean, **values}


def test_no_keys_beyond_loopback_exits_2_naming_the_fix(tmp_path: Path) -> None:
    result = serve(
        "--listen", "0.0.0.0:0", "--database-url", f"sqlite:///{tmp_path / 'm.db'}", env=_env()
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "MEMORI_API_KEYS" in lines[0]
    assert "--allow-unauthenticated" in lines[0]
    assert not (tmp_path / "m.db").exists(), "nothing is opened before the refusal"


def test_the_environment_variable_form_is_refused_too(tmp_path: Path) -> None:
    env = _env(MEMORI_LISTEN="[::]:0", MEMORI_DATABASE_URL=f"sqlite:///{tmp_path / 'm.db'}")
    assert serve(env=env).returncode == 2


@pytest.mark.parametrize(
    "opt_in",
    [("--allow-unauthenticated",), ()],
    ids=["flag", "variable"],
)
def test_an_explicit_opt_in_serves_without_keys(tmp_path: Path, opt_in: tuple[str, ...]) -> None:
    env = {} if opt_in else {"MEMORI_ALLOW_UNAUTHENTICATED": "true"}
    with ServerProcess(
        f"sqlite:///{tmp_path / 'm.db'}", *opt_in, "--listen", "0.0.0.0:0", env=env
    ) as server:
        with grpc.insecure_channel(server.target) as channel:
            who = common_pb2.Attribution(entity_id="u")
            assert SessionServiceStub(channel).Reset(session_pb2.ResetRequest(attribution=who))
        assert "serving without API keys" in server.log


def test_keys_shorter_than_32_characters_are_refused_at_start(tmp_path: Path) -> None:
    result = serve(
        "--database-url",
        f"sqlite:///{tmp_path / 'm.db'}",
        env=_env(MEMORI_API_KEYS="acme=short-key"),
    )
    assert result.returncode == 2
    assert "at least 32" in result.stderr
    assert "short-key" not in result.stderr, "the key itself is never echoed"


def test_hashed_keys_have_no_length_rule(tmp_path: Path) -> None:
    digest = "0" * 64
    with ServerProcess(
        f"sqlite:///{tmp_path / 'm.db'}",
        "--listen",
        "0.0.0.0:0",
        env={"MEMORI_API_KEYS": f"acme=sha256:{digest}"},
    ) as server:
        assert server.port


def _reset(target: str, key: str) -> None:
    with grpc.insecure_channel(target) as channel:
        SessionServiceStub(channel).Reset(
            session_pb2.ResetRequest(attribution=common_pb2.Attribution(entity_id="u")),
            metadata=(("authorization", f"Bearer {key}"),),
            timeout=10,
        )


def _until(condition: str, server: ServerProcess, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while condition not in server.log:
        assert time.monotonic() < deadline, f"no {condition!r} in the log:\n{server.log}"
        time.sleep(0.05)


def test_sighup_reloads_the_keys_file_and_a_bad_file_keeps_the_old_keys(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"acme={KEY_A}\n")
    with ServerProcess(
        f"sqlite:///{tmp_path / 'm.db'}", "--listen", "0.0.0.0:0", "--api-keys-file", str(keys)
    ) as server:
        _reset(server.target, KEY_A)
        keys.write_text(f"acme={KEY_B}\n")
        server.signal(signal.SIGHUP)
        _until("API keys reloaded", server)
        _reset(server.target, KEY_B)
        call_fails(lambda: _reset(server.target, KEY_A), grpc.StatusCode.UNAUTHENTICATED)
        keys.write_text("acme=too-short\n")
        server.signal(signal.SIGHUP)
        _until("API keys not reloaded", server)
        _reset(server.target, KEY_B)


def test_the_docker_image_sets_no_opt_out() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "MEMORI_ALLOW_UNAUTHENTICATED" not in dockerfile.split("ENV", 1)[1]
    assert "allow-unauthenticated" not in dockerfile.split("ENTRYPOINT", 1)[1]
    assert "MEMORI_LISTEN=0.0.0.0:50051" in dockerfile  # so keys are required to start
