"""Run `memori-server serve` as a real subprocess and find the port it picked."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

# Matches the text log (address=H:P) and the JSON log ("address": "H:P").
_LISTENING = re.compile(r'memori-server listening.*?address(?:=|": ")(\S+?):(\d+)')
SERVER_BIN = Path(sys.executable).with_name("memori-server")


class ServerProcess:
    """`memori-server serve --listen 127.0.0.1:0` with its log collected in the background.

    `program` replaces `memori-server serve` for servers built on the same app (benchmarks).
    """

    def __init__(
        self,
        database_url: str | None,
        *args: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        program: Sequence[str] = (str(SERVER_BIN), "serve"),
    ) -> None:
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.port = 0
        command = [*program, "--listen", "127.0.0.1:0", *args]
        if database_url is not None:  # None: the server's own default
            command += ["--database-url", database_url]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if match := _LISTENING.search(line):
                self.port = int(match.group(2))
                self._ready.set()
        self._ready.set()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30.0) -> str:
        if not self._ready.wait(timeout) or not self.port:
            self.stop()
            raise RuntimeError(f"memori-server did not start:\n{self.log}")
        return self.target

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)  # the last log lines
        return code

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        code = self.process.wait()
        self._reader.join(5)  # the last log lines
        return code

    def __enter__(self) -> ServerProcess:
        self.wait_ready()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
