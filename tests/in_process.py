"""A real MemoriServer on port 0 in a background thread with its own event loop.

Tests talk to it over a real channel with the generated stubs, so every call crosses the
wire; `run()` executes a coroutine on the server's loop for direct storage setup.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from memori_server.app import MemoriServer
from memori_server.config import Settings

T = TypeVar("T")


class InProcessServer:
    def __init__(self, settings: Settings) -> None:
        self.server = MemoriServer(settings)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.port = self.run(self.server.start())
        self.target = f"127.0.0.1:{self.port}"

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def close(self) -> None:
        self.run(self.server.stop(grace=1.0))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
