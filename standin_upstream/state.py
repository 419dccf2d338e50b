"""Recorded requests, the behaviour queue and the delay, shared with test threads under a lock."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, TypedDict

from standin_upstream.behaviours import Behaviour, validate_behaviour


class RecordedRequest(TypedDict):
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any  # the parsed JSON body; None if it was not valid JSON


class State:
    """Everything tests read or script; safe to use from any thread."""

    def __init__(self, delay: float) -> None:
        self._changed = threading.Condition()
        self._records: list[RecordedRequest] = []
        self._queue: deque[Behaviour] = deque()
        self._delay = 0.0
        self.set_delay(delay)

    @property
    def delay(self) -> float:
        return self._delay

    def set_delay(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("delay must not be negative")
        self._delay = float(seconds)

    def record(self, request: RecordedRequest) -> None:
        with self._changed:
            self._records.append(request)
            self._changed.notify_all()

    def records(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._records)

    def script(self, behaviours: tuple[object, ...] | list[object]) -> int:
        """Queue behaviours (all checked before any is queued); returns the queue length."""
        checked = [validate_behaviour(behaviour) for behaviour in behaviours]
        with self._changed:
            self._queue.extend(checked)
            return len(self._queue)

    def next_behaviour(self) -> Behaviour:
        with self._changed:
            return self._queue.popleft() if self._queue else {}

    def clear(self) -> None:
        with self._changed:
            self._records.clear()
            self._queue.clear()

    def wait_for_records(self, count: int, timeout: float) -> list[RecordedRequest]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._records) >= count, timeout):
                raise TimeoutError(f"{len(self._records)} of {count} requests after {timeout}s")
            return list(self._records)
