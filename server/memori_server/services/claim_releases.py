"""Releasing the request-id claims of calls that failed, and waiting for that at shutdown.

A failed or cancelled call (completion or append) gives its request id back so that a retry
runs the request again at once. The release runs as a task of its own, because it must
outlive the call's cancellation; the server waits for these tasks when it stops, after the
calls have ended, since a claim left behind would make the retry wait for its lease.

"After the calls have ended" is counted here, not taken from gRPC: the server's stop returns
once it has cancelled the calls still running, and a cancelled call starts its release only
when its task next runs.
"""

from __future__ import annotations

import asyncio
import contextlib

from memori_server.around import Around
from memori_server.storage.idempotency import IdempotencyStore


class ClaimReleases:
    def __init__(self, requests: IdempotencyStore) -> None:
        self._requests = requests
        self._pending: set[asyncio.Task[None]] = set()
        self._calls = 0
        self._no_calls = asyncio.Event()
        self._no_calls.set()
        self._holding = Around(self._hold, self._let_go)

    def holding(self) -> contextlib.AbstractContextManager[None]:
        """A call that may hold a claim runs inside (and releases it, if it fails, before
        leaving): `drain` waits for it."""
        return self._holding

    def _hold(self) -> None:
        self._calls += 1
        self._no_calls.clear()

    def _let_go(self) -> None:
        self._calls -= 1
        if not self._calls:
            self._no_calls.set()

    def release(self, tenant_id: str, request_id: str | None, owner: str | None) -> None:
        """Give back this call's claim of `request_id` (nothing when it held none)."""
        if request_id is None or owner is None:
            return
        task = asyncio.get_running_loop().create_task(
            self._requests.release(tenant_id, request_id, owner)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self, seconds: float) -> None:
        """Wait, at most `seconds` in all, for the calls holding claims to end, then for the
        releases under way."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await self._no_calls.wait()
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=max(deadline - loop.time(), 0))


__all__ = ["ClaimReleases"]
