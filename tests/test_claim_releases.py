"""Request ids of calls that fail or are cancelled are given back, and the server waits for
that at shutdown: appends as completions (they share one `ClaimReleases`)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from memori_proto.v1 import common_pb2, session_pb2
from memori_server.services.append import Appender
from memori_server.services.claim_releases import ClaimReleases

from tests.chat_calls import user
from tests.conftest import make_settings
from tests.storage_support import Stores


class Rpc:
    def time_remaining(self) -> float | None:
        return None


@pytest.fixture
def stores(fresh_database_url: str) -> Iterator[Stores]:
    opened = Stores(fresh_database_url, fast_paths=True)
    yield opened
    opened.close()


def _append_request(request_id: str) -> session_pb2.AppendMessagesRequest:
    return session_pb2.AppendMessagesRequest(
        attribution=common_pb2.Attribution(entity_id=f"user-{uuid.uuid4().hex[:8]}"),
        messages=[user("imported from elsewhere")],
        request_id=request_id,
    )


def test_an_append_cancelled_midway_gives_its_request_id_back_before_drain_returns(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    releases = ClaimReleases(stores.requests)
    appender = Appender(
        stores.turns,
        stores.sessions,
        stores.requests,
        make_settings("sqlite:///unused.db"),
        releases,
    )
    store_turn = stores.turns.store_turn
    entered = asyncio.Event()

    async def stalled(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await asyncio.sleep(60)

    request = _append_request(str(uuid.uuid4()))

    async def scenario() -> session_pb2.AppendMessagesResponse:
        monkeypatch.setattr(stores.turns, "store_turn", stalled)
        call = asyncio.ensure_future(appender.append(request, Rpc()))  # type: ignore[arg-type]
        await entered.wait()
        call.cancel()  # as the server's stop cancels the calls its grace did not see end
        with contextlib.suppress(asyncio.CancelledError):
            await call
        await releases.drain(5.0)
        monkeypatch.setattr(stores.turns, "store_turn", store_turn)
        # The retry runs at once: no claim is left for it to wait out (a 60 s lease).
        return await asyncio.wait_for(appender.append(request, Rpc()), 5.0)  # type: ignore[arg-type]

    retried = stores.run(scenario())
    assert not retried.replayed
    assert list(retried.sequences) == [1]


def test_drain_waits_for_releases_under_way_and_a_call_without_a_claim_needs_none(
    stores: Stores,
) -> None:
    releases = ClaimReleases(stores.requests)

    async def scenario() -> tuple[str, str]:
        releases.release("default", None, None)  # no request id: nothing to give back
        request_id = str(uuid.uuid4())
        claim = await stores.requests.claim("default", request_id, "append", "print", 60)
        assert claim.owner is not None
        releases.release("default", request_id, claim.owner)
        await releases.drain(5.0)
        again = await stores.requests.claim("default", request_id, "append", "print", 60)
        held = await stores.requests.claim("default", request_id, "append", "print", 60)
        return again.state.value, held.state.value

    assert stores.run(scenario()) == ("claimed", "in_flight")
