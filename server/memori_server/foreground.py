"""The completions this process is working on right now, for background work to give way to.

A completion is "in the foreground" while the server does its own work for it: validating,
loading and assembling the history, storing the turn. While it waits for the upstream, or
relays a stream, it is not: that is when background work (long-term memory's indexer) may
use the cores, the database and the disk. Background work asks `quiet` (on the event loop) or
`wait_quiet` (on a thread) before each step, and can register an interrupt that is called as
soon as a completion comes to the foreground, to stop a step already running.

Quiet means quiet for `settle` seconds: an upstream that answers within it (a local model,
a cache) finds nothing started in the meantime, and calls that follow each other closely
keep background work out between them.

Counting happens on the event loop; the waits and interrupts are safe from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from memori_server.around import Around

SETTLE = 0.01


_Event = TypeVar("_Event", threading.Event, asyncio.Event)


class _QuietEvent(Generic[_Event]):
    """An event set while no completion is in the foreground, kept up to date only while
    someone waits on it (`watchers`): a completion passes four edges, and a
    threading.Event's set and clear cost microseconds each (a Condition), for nobody when
    long-term memory is off."""

    __slots__ = ("event", "watchers")

    def __init__(self, event: _Event) -> None:
        self.event: _Event = event
        self.watchers = 0

    def follow(self, count: int) -> None:
        if count:
            self.event.clear()
        else:
            self.event.set()


class Foreground:
    def __init__(self, settle: float = SETTLE) -> None:
        self._settle = settle
        self._lock = threading.Lock()
        self._count = 0
        self._quiet_since = 0.0
        self._thread_quiet = _QuietEvent(threading.Event())  # for threads
        # For the event loop, where counting happens.
        self._loop_quiet = _QuietEvent(asyncio.Event())
        self._quiet_events: tuple[_QuietEvent[Any], ...] = (self._thread_quiet, self._loop_quiet)
        self._interrupts: list[Callable[[], None]] = []
        # Every completion enters both.
        self._serving = Around(self._enter, self._leave)
        self._waiting = Around(self._leave, self._enter)

    @property
    def busy(self) -> bool:
        return self._count > 0

    def serving(self) -> contextlib.AbstractContextManager[None]:
        """A completion's own work runs inside."""
        return self._serving

    def waiting(self) -> contextlib.AbstractContextManager[None]:
        """Inside `serving`: the completion waits for something else (the upstream)."""
        return self._waiting

    def _enter(self) -> None:
        with self._lock:
            self._count += 1
            if self._count == 1:
                self._follow_watched()
            interrupts = list(self._interrupts) if self._interrupts else ()
        for interrupt in interrupts:
            interrupt()

    def _leave(self) -> None:
        with self._lock:
            self._count -= 1
            if self._count == 0:
                self._quiet_since = time.monotonic()
                self._follow_watched()

    def _follow_watched(self) -> None:
        """Bring the events someone waits on up to date with the count (under the lock)."""
        for quiet in self._quiet_events:
            if quiet.watchers:
                quiet.follow(self._count)

    @contextlib.contextmanager
    def _watching(self, quiet: _QuietEvent[Any]) -> Iterator[None]:
        """Keep `quiet` up to date while inside (it is brought up to date first)."""
        with self._lock:
            quiet.watchers += 1
            quiet.follow(self._count)
        try:
            yield
        finally:
            with self._lock:
                quiet.watchers -= 1

    def _unsettled(self) -> float:
        """Seconds until the quiet has lasted `settle` (0: it has; only while quiet)."""
        return max(self._quiet_since + self._settle - time.monotonic(), 0.0)

    def wait_quiet(self, patience: float) -> bool:
        """Block until no completion has been in the foreground for `settle` seconds, at
        most `patience` seconds; whether it is quiet."""
        deadline = time.monotonic() + patience
        with self._watching(self._thread_quiet):
            while self._thread_quiet.event.wait(max(deadline - time.monotonic(), 0.0)):
                unsettled = self._unsettled()
                if unsettled == 0.0:
                    return True
                if time.monotonic() + unsettled > deadline:
                    return False
                time.sleep(unsettled)
                if not self._count and self._unsettled() == 0.0:
                    return True
        return False

    async def quiet(self, patience: float) -> None:
        """On the event loop: wait until no completion has been in the foreground for
        `settle` seconds, at most `patience` seconds (then go on anyway, so that background
        work never starves)."""
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            if self._count:
                with contextlib.suppress(TimeoutError), self._watching(self._loop_quiet):
                    await asyncio.wait_for(
                        self._loop_quiet.event.wait(), max(deadline - time.monotonic(), 0.0)
                    )
                continue
            unsettled = self._unsettled()
            if unsettled == 0.0:
                return
            await asyncio.sleep(min(unsettled, max(deadline - time.monotonic(), 0.0)))

    @contextlib.contextmanager
    def interrupting(self, interrupt: Callable[[], None]) -> Iterator[None]:
        """Call `interrupt` (from the event loop's thread) when a completion comes to the
        foreground while inside; at once if one is there already."""
        with self._lock:
            self._interrupts.append(interrupt)
            busy = self._count > 0
        try:
            if busy:
                interrupt()
            yield
        finally:
            with self._lock:
                self._interrupts.remove(interrupt)


__all__ = ["Foreground"]
