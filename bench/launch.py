"""Start `bench.bench_server` as a subprocess and provide the databases it runs on."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"memori-server listening address=(\S+):(\d+)")


class BenchServer:
    """`python -m bench.bench_server` on a free port; a context manager like ServerProcess."""

    def __init__(self, database_url: str, *args: str) -> None:
        self.lines: list[str] = []
        self.port = 0
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_server", "--database-url", database_url, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
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
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        code = self.process.wait()
        self._reader.join(5)
        return code

    def __enter__(self) -> BenchServer:
        if not self._ready.wait(60) or not self.port:
            self.stop()
            raise RuntimeError(f"bench server did not start:\n{self.log}")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@contextmanager
def sqlite_database(directory: Path) -> Iterator[str]:
    yield f"sqlite:///{directory / 'bench.db'}"


async def _admin(admin_url: str, statement: str) -> None:
    url = make_url(admin_url)
    conn = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database or "postgres",
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh `memori_bench_<random>` database next to `admin_url`'s, dropped afterwards."""
    name = f"memori_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield (
            make_url(admin_url)
            .set(drivername="postgresql", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def postgres_admin_url(explicit: str | None) -> str | None:
    """--database-url, else MEMORI_TEST_DATABASE_URL, else None (SQLite only)."""
    return explicit or os.environ.get("MEMORI_TEST_DATABASE_URL") or None
