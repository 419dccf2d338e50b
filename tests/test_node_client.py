"""Node.js client: tests/node/*.test.ts drive a real `memori-server` subprocess through
the generated TypeScript stubs and Connect's gRPC (HTTP/2) transport."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.node_tap import check_summary
from tests.repo_paths import NODE_BIN, ROOT, tool_env
from tests.server_process import ServerProcess
from tests.standin_process import StandinProcess

NODE_TESTS = [Path("tests") / "node" / name for name in ("session.test.ts", "chat.test.ts")]


@pytest.fixture(scope="module")
def memori(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    database = tmp_path_factory.mktemp("node-client") / "memori.db"
    with (
        StandinProcess() as standin,
        ServerProcess(f"sqlite:///{database}", "--upstream-base-url", standin.base_url) as running,
    ):
        yield running


def test_node_client_sessions_and_chat(memori: ServerProcess) -> None:
    node = shutil.which("node", path=tool_env()["PATH"])
    assert node is not None, "Node.js is needed for the Node client test"
    assert (NODE_BIN / "tsx").exists(), "node_modules missing: run ./dev setup"
    result = subprocess.run(
        [node, "--import", "tsx", "--test", "--test-reporter=tap", *map(str, NODE_TESTS)],
        cwd=ROOT,
        env=tool_env(MEMORI_TARGET=memori.target),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, f"node tests failed:\n{output}\n--- server log ---\n{memori.log}"
    assert not check_summary(result.stdout, output), f"node tests skipped:\n{output}"
