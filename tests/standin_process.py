"""`python -m standin_upstream` (the test-double LLM) as a subprocess: the README's offline
demo, the grpcurl and Node tests, and the benchmarks run it this way."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any

from tests.repo_paths import ROOT

_STANDIN_LISTENING = "standin-upstream listening base_url="


class StandinProcess:
    """`python -m standin_upstream --port 0` (the test-double LLM) in a process of its own.

    Its own process, so that its event loop competes with neither the load generator nor
    the server under test. `base_url` is what OpenAI clients are given; the stand-in's HTTP
    control API (`/_standin/...`) lives next to it, at `control_url`.
    """

    def __init__(self, delay_ms: float = 0.0) -> None:
        self.lines: list[str] = []
        self.base_url = ""
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "standin_upstream", "--port", "0", "--delay-ms", f"{delay_ms}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith(_STANDIN_LISTENING):
                self.base_url = line.removeprefix(_STANDIN_LISTENING).strip()
                self._ready.set()
        self._ready.set()

    @property
    def control_url(self) -> str:
        return self.base_url.removesuffix("/v1")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        code = self.process.wait()
        self._reader.join(5)
        return code

    def __enter__(self) -> StandinProcess:
        if not self._ready.wait(30) or not self.base_url:
            self.stop()
            log = "\n".join(self.lines)
            raise RuntimeError(f"the stand-in upstream did not start:\n{log}")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def requests(self) -> list[dict[str, Any]]:
        """What the stand-in received (its /_standin/requests control endpoint)."""
        with urllib.request.urlopen(f"{self.control_url}/_standin/requests", timeout=10) as reply:
            records = json.loads(reply.read())
        assert isinstance(records, list)
        return records

    def script(self, *behaviours: dict[str, Any]) -> None:
        """Queue behaviours for the next chat requests (its /_standin/script endpoint)."""
        request = urllib.request.Request(
            f"{self.control_url}/_standin/script",
            data=json.dumps(list(behaviours)).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """What the stand-in received, once it has received `count` requests."""
        deadline = time.monotonic() + timeout
        while len(received := self.requests()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(received)} of {count} requests after {timeout} s")
            time.sleep(0.02)
        return received
