"""A process serving until signalled (`memori-server serve`): started, it leaves what lives as
long as it does to reference counting; a SIGTERM stops it gracefully."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from pathlib import Path

from memori_server.app import YOUNG_COLLECTION_THRESHOLD, MemoriServer

from tests.conftest import make_settings
from tests.databases import sqlite_url


def test_a_serving_process_freezes_what_it_started_with_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    settings = make_settings(sqlite_url(tmp_path), upstream_base_url="http://127.0.0.1:9/v1")
    gc.unfreeze()

    async def serve() -> tuple[int, int]:
        server = MemoriServer(settings)
        serving = asyncio.ensure_future(server.serve_until_signalled())
        try:
            async with asyncio.timeout(30):  # no event tells "frozen": polled
                while not gc.get_freeze_count() and not serving.done():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            frozen = gc.get_freeze_count()
            threshold = gc.get_threshold()[0]
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # the loop's handler: a graceful stop
            async with asyncio.timeout(30):
                await serving
        return frozen, threshold

    thresholds = gc.get_threshold()
    try:
        frozen, young = asyncio.run(serve())
    finally:
        gc.unfreeze()  # this test process goes on: its objects stay collectable
        gc.set_threshold(*thresholds)
    assert frozen > 1000  # the modules, the SDK, the statements: not a handful
    assert young == YOUNG_COLLECTION_THRESHOLD  # fewer young passes over the calls in flight
