"""Start the benchmark's processes (server, stand-in upstream) and provide their databases."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.databases import fresh_postgres_database, postgres_admin_url
from tests.server_process import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
_STANDIN_LISTENING = "standin-upstream listening base_url="
__all__ = [
    "StandinProcess",
    "bench_server",
    "postgres_admin_url",
    "postgres_database",
    "sqlite_database",
]


def bench_server(database_url: str, *args: str) -> ServerProcess:
    """`python -m bench.bench_server` on a free port (the real app plus a no-op RPC)."""
    return ServerProcess(
        database_url, *args, cwd=ROOT, program=(sys.executable, "-m", "bench.bench_server")
    )


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


@contextmanager
def sqlite_database(directory: Path) -> Iterator[str]:
    yield f"sqlite:///{directory / 'bench.db'}"


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh `memori_bench_<random>` database next to `admin_url`'s, dropped afterwards."""
    with fresh_postgres_database(admin_url, prefix="memori_bench") as url:
        yield url
