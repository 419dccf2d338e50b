"""The examples run as documented against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.in_process import InProcessServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_session_lifecycle_example(server: InProcessServer) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "session_lifecycle.py")],
        env={**os.environ, "MEMORI_TARGET": server.target},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "after Delete: NOT_FOUND" in result.stdout
    assert "1 session(s) active in the last 24 h" in result.stdout
    assert "0 stored message(s)" in result.stdout
