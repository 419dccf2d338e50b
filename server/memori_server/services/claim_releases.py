"""Releasing the request-id claims of calls that failed, and waiting for that at shutdown.

A failed or cancelled call (completion or append) gives its request id back so that a retry
runs the request again at once. The release runs as a task of its own, because it must
outlive the call's cancellation; the server waits for these tasks when it stops, after the
calls have ended, since a claim left behind would make the retry wait for its lease.
"""

from __future__ import annotations

import asyncio

from memori_server.storage.idempotency import IdempotencyStore


class ClaimReleases:
    def __init__(self, requests: IdempotencyStore) -> None:
        self._requests = requests
        self._pending: set[asyncio.Task[None]] = set()

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
        """Wait, at most `seconds`, for the releases under way."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=seconds)


__all__ = ["ClaimReleases"]
