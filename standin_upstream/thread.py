"""StandinThread: a StandinUpstream on its own event loop, for synchronous tests."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from types import TracebackType
from typing import Self

from standin_upstream.behaviours import Behaviour
from standin_upstream.server import StandinUpstream
from standin_upstream.state import RecordedRequest


class StandinThread:
    """Runs the upstream in a daemon thread, so the test's own loop (or none) stays free."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, delay: float = 0.0) -> None:
        self.upstream = StandinUpstream(delay=delay)
        self._address = (host, port)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("StandinThread is already started")
        started: Future[None] = Future()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._main(started),), name="standin-upstream", daemon=True
        )
        self._thread.start()
        try:
            started.result(timeout=10)
        except BaseException:
            self._thread.join(timeout=10)
            self._thread = None
            raise
        return self

    async def _main(self, started: Future[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            await self.upstream.start(*self._address)
        except Exception as exc:
            started.set_exception(exc)
            return
        started.set_result(None)
        try:
            await self._stopping.wait()
        finally:
            await self.upstream.stop()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None or self._loop is None or self._stopping is None:
            return
        self._loop.call_soon_threadsafe(self._stopping.set)
        thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.upstream.port

    @property
    def base_url(self) -> str:
        return self.upstream.base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.upstream.requests

    def script(self, *behaviours: Behaviour) -> None:
        self.upstream.script(*behaviours)

    def clear(self) -> None:
        self.upstream.clear()

    def set_delay(self, seconds: float) -> None:
        self.upstream.set_delay(seconds)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until at least `count` chat requests are recorded; TimeoutError otherwise."""
        return self.upstream.wait_for_records(count, timeout)
