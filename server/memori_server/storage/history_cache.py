"""Each recently used session's history window, held in this process between calls.

A chat call used to read and convert its whole token-budget window (hundreds of rows) on
every call. Now the call's one statement reads only the messages after the window held
here, and the window is extended in place once a turn is stored. The database stays the
truth: the statement reads the session row on every call, and a window is used only for
the same session (same id and creation time) at or below its message count. Another
process's turn shows up as rows after the window; a deleted session reads as none.

Bounded by --history-cache-bytes (least recently used windows go first) and by idle time,
so a conversation does not linger in memory once its session has gone quiet.
"""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from memori_server.domain import Attribution
from memori_server.metrics import HISTORY_CACHE_BYTES, HISTORY_CACHE_LOOKUPS, HISTORY_CACHE_SESSIONS
from memori_server.storage.records import HistoryMessage

# What a held message costs besides its encoded bytes: the record and the bytes' headers.
MESSAGE_OVERHEAD_BYTES = 120
WINDOW_OVERHEAD_BYTES = 400
_HIT, _MISS, _STALE = (HISTORY_CACHE_LOOKUPS.labels(result) for result in ("hit", "miss", "stale"))


@dataclass(frozen=True, slots=True)
class HistoryWindow:
    """A session's newest messages, oldest first, as of `through` messages."""

    session_id: str
    create_time: datetime
    """With the id, tells this session from one deleted and created again under its id."""
    attribution: Attribution
    through: int
    """The session's message count the window reflects: its newest message's sequence."""
    messages: tuple[HistoryMessage, ...]
    from_session_start: bool
    """`messages` begin with the session's first message."""
    tokens: int
    size: int

    def covers(self, token_budget: int, min_messages: int) -> bool:
        """Whether a load needs nothing older than this window."""
        return len(self.messages) >= min_messages and (
            self.from_session_start or self.tokens > token_budget
        )

    @classmethod
    def of(
        cls,
        session_id: str,
        create_time: datetime,
        attribution: Attribution,
        through: int,
        messages: Sequence[HistoryMessage],
    ) -> HistoryWindow:
        held = tuple(messages)
        size = WINDOW_OVERHEAD_BYTES + _bytes(held)
        tokens = sum(item.token_count for item in held)
        from_start = through <= len(held)
        return cls(session_id, create_time, attribution, through, held, from_start, tokens, size)

    def extended(
        self, turn: Sequence[HistoryMessage], token_budget: int, min_messages: int
    ) -> HistoryWindow:
        """With a just-stored turn appended, and the oldest messages the budget no longer
        reaches let go (as a load would read it: the budget, and at least `min_messages`).

        The window kept is the shortest suffix whose tokens exceed the budget (and that
        holds `min_messages`), or all of it: found from the old end, so a call costs what
        it adds and lets go, not the window's length.
        """
        old = self.messages
        total = len(old) + len(turn)
        tokens = self.tokens + sum(item.token_count for item in turn)
        size = self.size + _bytes(turn)
        start = 0
        while start < total - 1:
            first = old[start] if start < len(old) else turn[start - len(old)]
            after = tokens - first.token_count
            if after <= token_budget or total - start - 1 < min_messages:
                break  # the suffix after `start` would no longer reach past the budget
            tokens = after
            size -= _cost(first)
            start += 1
        # The window copied once (a tuple's slice from 0 is the tuple itself), not thrice.
        kept = len(old) - start
        held = old[start:] + tuple(turn) if kept > 0 else tuple(turn)[-kept:]
        through = self.through + len(turn)
        return HistoryWindow(
            self.session_id,
            self.create_time,
            self.attribution,
            through,
            held,
            through <= len(held),
            tokens,
            size,
        )


def _cost(message: HistoryMessage) -> int:
    return len(message.encoded) + MESSAGE_OVERHEAD_BYTES


def _bytes(messages: Sequence[HistoryMessage]) -> int:
    return sum(_cost(item) for item in messages)


Key = tuple[str, str]  # (tenant id, session id)


class HistoryCache:
    def __init__(
        self,
        max_bytes: int,
        idle_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_bytes = max_bytes
        self._idle_seconds = idle_seconds
        self._clock = clock
        self._windows: OrderedDict[Key, tuple[HistoryWindow, float]] = OrderedDict()
        # An attribution's session, for calls that name none (their statement follows the
        # attribution's current-session pointer, which usually points here).
        self._of_attribution: dict[tuple[str, Attribution], str] = {}
        self._bytes = 0
        _report(weakref.ref(self))

    @property
    def enabled(self) -> bool:
        return self._max_bytes > 0

    @property
    def size(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._windows)

    def lookup(
        self, tenant_id: str, session_id: str | None, attribution: Attribution
    ) -> HistoryWindow | None:
        """The window held for the session (or the attribution's last session, given no id)."""
        if session_id is None:
            session_id = self._of_attribution.get((tenant_id, attribution))
            if session_id is None:
                _MISS.inc()
                return None
        key = (tenant_id, session_id)
        entry = self._windows.get(key)
        if entry is None:
            _MISS.inc()
            return None
        _HIT.inc()
        self._windows[key] = (entry[0], self._clock())
        self._windows.move_to_end(key)
        return entry[0]

    def stale(self) -> None:
        """Count a held window that the database's rows showed out of date."""
        _STALE.inc()

    def keep(self, tenant_id: str, window: HistoryWindow) -> None:
        """Hold `window` unless one as new or newer is held already (calls finish out of
        order), then let the least recently used windows go down to the bound."""
        if window.size > self._max_bytes // 4:  # one huge session would push out the rest
            self.forget_session(tenant_id, window.session_id)
            return
        key = (tenant_id, window.session_id)
        held = self._windows.get(key)
        if held is not None:
            current = held[0]
            if current.create_time == window.create_time and current.through > window.through:
                return
            self._remove(key)
        self._windows[key] = (window, self._clock())
        self._bytes += window.size
        self._of_attribution[(tenant_id, window.attribution)] = window.session_id
        self._trim()

    def extend(
        self,
        tenant_id: str,
        session_id: str,
        create_time: datetime,
        message_count: int,
        turn: Sequence[HistoryMessage],
        token_budget: int,
        min_messages: int,
    ) -> None:
        """Add a turn just stored as the session's last `len(turn)` messages, when the window
        held ends right before it; otherwise the next load reads what is missing."""
        held = self._windows.get((tenant_id, session_id))
        if held is None:
            return
        window = held[0]
        if window.create_time != create_time or window.through != message_count - len(turn):
            return
        self.keep(tenant_id, window.extended(turn, token_budget, min_messages))

    def forget_session(self, tenant_id: str, session_id: str) -> None:
        if (tenant_id, session_id) in self._windows:
            self._remove((tenant_id, session_id))

    def forget_entity(self, tenant_id: str, entity_id: str) -> None:
        """Drop every window of an entity (it was erased)."""
        for key, (window, _used) in list(self._windows.items()):
            if key[0] == tenant_id and window.attribution.entity_id == entity_id:
                self._remove(key)

    def sweep(self) -> int:
        """Drop the windows idle longer than the idle bound; returns how many."""
        cutoff = self._clock() - self._idle_seconds
        dropped = 0
        while self._windows:
            key, (_window, used) = next(iter(self._windows.items()))
            if used >= cutoff:
                break
            self._remove(key)
            dropped += 1
        return dropped

    def _remove(self, key: Key) -> None:
        window, _used = self._windows.pop(key)
        self._bytes -= window.size
        pointer = (key[0], window.attribution)
        if self._of_attribution.get(pointer) == window.session_id:
            del self._of_attribution[pointer]

    def _trim(self) -> None:
        while self._bytes > self._max_bytes and self._windows:
            self._remove(next(iter(self._windows)))
        self.sweep()


def _report(cache: weakref.ref[HistoryCache]) -> None:
    """The gauges read the newest cache (a server has one) when scraped: setting them at
    every change cost more than the change itself."""

    def held_bytes() -> float:
        live = cache()
        return live.size if live is not None else 0

    def sessions() -> float:
        live = cache()
        return len(live) if live is not None else 0

    HISTORY_CACHE_BYTES.set_function(held_bytes)
    HISTORY_CACHE_SESSIONS.set_function(sessions)


__all__ = ["HistoryCache", "HistoryWindow"]
