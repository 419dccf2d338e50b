"""Foreground and YieldingRuns: how the memory indexer gives way to completions."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import pytest
from memori_server.foreground import Foreground
from memori_server.memory.embedder import Embedder, RunStopped, StopHook
from memori_server.memory.yielding import YieldingRuns


def test_serving_counts_and_waiting_steps_out() -> None:
    foreground = Foreground()
    assert not foreground.busy
    with foreground.serving():
        assert foreground.busy
        with foreground.serving():
            with foreground.waiting():
                assert foreground.busy  # the other call is still served
            assert foreground.busy
        with foreground.waiting():
            assert not foreground.busy
        assert foreground.busy
    assert not foreground.busy


def test_a_call_that_fails_leaves_the_foreground() -> None:
    foreground = Foreground()
    with pytest.raises(ValueError, match="gone"), foreground.serving(), foreground.waiting():
        raise ValueError("upstream gone")
    assert not foreground.busy


def test_wait_quiet_gives_up_after_its_patience_while_a_call_is_served() -> None:
    foreground = Foreground(settle=0.0)
    with foreground.serving():
        started = time.monotonic()
        assert foreground.wait_quiet(0.05) is False
        assert time.monotonic() - started >= 0.05


def test_quiet_means_quiet_for_the_settle_time() -> None:
    foreground = Foreground(settle=0.05)
    with foreground.serving():
        pass
    left = time.monotonic()
    assert foreground.wait_quiet(1.0) is True
    assert time.monotonic() - left >= 0.05
    assert foreground.wait_quiet(0.0) is True  # settled: no wait


def test_wait_quiet_returns_when_the_call_leaves() -> None:
    foreground = Foreground(settle=0.0)
    served = threading.Event()

    def call() -> None:
        with foreground.serving():
            served.set()
            time.sleep(0.05)

    thread = threading.Thread(target=call)
    thread.start()
    served.wait()
    assert foreground.wait_quiet(5.0) is True
    assert not foreground.busy
    thread.join()


def test_an_interrupt_is_called_when_a_call_arrives_and_at_once_when_one_is_there() -> None:
    foreground = Foreground()
    calls: list[str] = []
    with foreground.interrupting(lambda: calls.append("stop")):
        assert calls == []
        with foreground.serving():
            assert calls == ["stop"]
            with foreground.interrupting(lambda: calls.append("at once")):
                assert calls == ["stop", "at once"]
    with foreground.serving():
        pass
    assert calls == ["stop", "at once"]  # unregistered on leaving


def test_quiet_on_the_event_loop_waits_for_the_call_then_the_settle_time() -> None:
    async def scenario() -> tuple[float, float]:
        foreground = Foreground(settle=0.03)

        async def call() -> None:
            with foreground.serving():
                await asyncio.sleep(0.05)

        task = asyncio.create_task(call())
        await asyncio.sleep(0)
        started = time.monotonic()
        await foreground.quiet(5.0)
        waited = time.monotonic() - started
        await task
        with foreground.serving():  # held: quiet gives up after its patience
            started = time.monotonic()
            await foreground.quiet(0.05)
            gave_up = time.monotonic() - started
        return waited, gave_up

    waited, gave_up = asyncio.run(scenario())
    assert waited >= 0.05 + 0.03 - 0.005
    assert 0.05 - 0.005 <= gave_up < 1.0


def test_waits_that_start_after_unwatched_calls_see_the_count_as_it_is() -> None:
    """The quiet events follow the count only while someone waits: a wait that starts
    later brings them up to date first, on a thread and on the event loop."""
    foreground = Foreground(settle=0.0)
    with foreground.serving():
        pass  # quiet again, with nobody watching
    assert foreground.wait_quiet(1.0) is True
    with foreground.serving():  # busy, with nobody watching
        assert foreground.wait_quiet(0.02) is False
        with foreground.waiting():
            assert foreground.wait_quiet(0.02) is True

    async def on_the_loop() -> tuple[float, float]:
        with foreground.serving():
            started = time.monotonic()
            await foreground.quiet(0.05)  # busy: gives up after its patience
            busy = time.monotonic() - started
        started = time.monotonic()
        await foreground.quiet(5.0)
        return busy, time.monotonic() - started

    busy, quiet = asyncio.run(on_the_loop())
    assert busy >= 0.045
    assert quiet < 1.0


def test_a_run_a_call_interrupts_is_run_again_and_past_patience_a_run_goes_to_its_end() -> None:
    foreground = Foreground(settle=0.0)
    runs = YieldingRuns(foreground, patience=0.05)
    hooks: list[StopHook | None] = []

    def attempt(hook: StopHook | None) -> str:
        hooks.append(hook)
        if hook is None:
            return "to its end"
        stopped = threading.Event()
        with hook(stopped.set):
            if len(hooks) == 1:
                with foreground.serving():  # a completion arrives midway
                    pass
            if stopped.is_set():
                raise RunStopped()
            return "uninterrupted"

    assert runs.run(attempt) == "uninterrupted"
    assert len(hooks) == 2
    assert runs.stopped == 1
    hooks.clear()
    waited = runs.waited
    with foreground.serving():
        assert runs.run(attempt) == "to its end"
    assert hooks == [None]
    assert runs.waited - waited >= 0.05  # its patience, counted as waiting, not as work


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(threads=2)


def test_the_model_stops_for_a_completion_and_its_vectors_are_unchanged(
    embedder: Embedder,
) -> None:
    """onnxruntime's terminate flag through the stop hook: the stopped batch is embedded
    again, and the result is what an uninterrupted embedding gives."""
    texts = [
        f"note {n}: the trip to the lake house and who brought the boat " * 8 for n in range(24)
    ]
    expected = embedder.embed(texts)
    foreground = Foreground(settle=0.0)
    runs = YieldingRuns(foreground, patience=30.0)
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(embedder.embed(texts, runs=runs)))
    worker.start()
    while worker.is_alive() and runs.stopped < 3:
        with foreground.serving():
            time.sleep(0.002)
        time.sleep(0.01)
    worker.join()
    assert runs.stopped >= 1
    np.testing.assert_allclose(result[0], expected, atol=1e-6)
