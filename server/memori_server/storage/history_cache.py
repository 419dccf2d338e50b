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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import overload

from memori_server.domain import Attribution
from memori_server.metrics import HISTORY_CACHE_BYTES, HISTORY_CACHE_LOOKUPS, HISTORY_CACHE_SESSIONS
from memori_server.storage.records import HistoryMessage

# What a held message costs besides its encoded bytes (its end offset, role and token
# count in the log's columns), counted generously.
MESSAGE_OVERHEAD_BYTES = 120
WINDOW_OVERHEAD_BYTES = 400
_HIT, _MISS, _STALE = (HISTORY_CACHE_LOOKUPS.labels(result) for result in ("hit", "miss", "stale"))


# A window lets go of its oldest messages by moving its start; the log they share is
# copied without them once they are this many and a quarter of what the window holds.
RELEASE_AT_LEAST = 16


class _Log:
    """A session's held messages, oldest first, in columns: each message's encoded JSON
    followed by a comma, in one buffer (`ends[i]` is where message i's comma ends), and
    its role and token count. Only ever grows at its end."""

    __slots__ = ("buffer", "ends", "roles", "tokens")

    def __init__(self, messages: Iterable[HistoryMessage]) -> None:
        self.buffer = bytearray()
        self.ends: list[int] = [0]
        self.roles: list[str] = []
        self.tokens: list[int] = []
        self.append(messages)

    def __len__(self) -> int:
        return len(self.roles)

    def append(self, messages: Iterable[HistoryMessage]) -> None:
        buffer, ends = self.buffer, self.ends
        for message in messages:
            buffer += message.encoded
            buffer += b","
            ends.append(len(buffer))
            self.roles.append(message.role)
            self.tokens.append(message.token_count)

    def message(self, index: int) -> HistoryMessage:
        encoded = bytes(self.buffer[self.ends[index] : self.ends[index + 1] - 1])
        return HistoryMessage(self.roles[index], encoded, self.tokens[index])

    def copy(self, start: int, stop: int) -> _Log:
        """Messages `[start, stop)` in a log of their own."""
        copied = _Log(())
        base = self.ends[start]
        copied.buffer = self.buffer[base : self.ends[stop]]
        copied.ends = [end - base for end in self.ends[start : stop + 1]]
        copied.roles = self.roles[start:stop]
        copied.tokens = self.tokens[start:stop]
        return copied


class MessageSpan(Sequence[HistoryMessage]):
    """Messages `[start, stop)` of a log that only ever grows at its end.

    A session's successive windows share one log: extending a window appends the turn
    instead of copying the window. A copy per call lived as long as the call and the next
    one (in flight across the upstream's reply), so every young collection of the cyclic
    garbage collector walked a window's worth of references per call in flight. The log
    holds the messages' encoded JSON in one buffer, so the upstream body takes a window's
    messages in one copy (`joined`): read from 300 message objects spread over the heap,
    they cost several times more, in cache misses.

    Indexing and iterating build each message from the log: for a few messages (the
    budget's edge, a resent tail), not for the whole window on every call.
    """

    __slots__ = ("_log", "_start", "_stop")

    def __init__(self, log: _Log, start: int, stop: int) -> None:
        self._log = log
        self._start = start
        self._stop = stop

    @classmethod
    def of(cls, messages: Iterable[HistoryMessage]) -> MessageSpan:
        log = _Log(messages)
        return cls(log, 0, len(log))

    def __len__(self) -> int:
        return self._stop - self._start

    @overload
    def __getitem__(self, index: int) -> HistoryMessage: ...

    @overload
    def __getitem__(self, index: slice) -> MessageSpan: ...

    def __getitem__(self, index: int | slice) -> HistoryMessage | MessageSpan:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise ValueError("a span of messages is sliced with a step of 1")
            return MessageSpan(self._log, self._start + start, self._start + max(start, stop))
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError("message index out of range")
        return self._log.message(self._start + position)

    def __iter__(self) -> Iterator[HistoryMessage]:
        return map(self._log.message, range(self._start, self._stop))

    def __reversed__(self) -> Iterator[HistoryMessage]:
        return map(self._log.message, range(self._stop - 1, self._start - 1, -1))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # equal to lists and tuples, which are not

    def __repr__(self) -> str:
        return f"MessageSpan({list(self)!r})"

    def joined(self) -> bytearray:
        """The messages' encoded JSON joined by commas, as the upstream body carries them."""
        ends = self._log.ends
        if self._stop == self._start:
            return bytearray()
        return self._log.buffer[ends[self._start] : ends[self._stop] - 1]

    def token_count(self, index: int) -> int:
        return self._log.tokens[self._start + index]

    def role(self, index: int) -> str:
        return self._log.roles[self._start + index]

    def retained_bytes(self) -> tuple[int, int]:
        """What the span keeps alive, its messages and those it let go of but its log still
        holds: how many, and their encoded bytes."""
        return self._stop, self._log.ends[self._stop] - self._stop

    def extended(self, turn: Sequence[HistoryMessage], drop: int) -> MessageSpan:
        """This span with `turn` after it and its first `drop` messages (counted through
        the turn) let go. Appends in place when nothing was appended after this span
        (the session's newest window); else copies."""
        log, start, stop = self._log, self._start + drop, self._stop
        if stop != len(log):
            log = log.copy(self._start, stop)
            start, stop = drop, stop - self._start
        log.append(turn)
        stop += len(turn)
        if start >= RELEASE_AT_LEAST and start * 4 >= stop - start:
            log, start, stop = log.copy(start, stop), 0, stop - start
        return MessageSpan(log, start, stop)


@dataclass(frozen=True, slots=True)
class HistoryWindow:
    """A session's newest messages, oldest first, as of `through` messages."""

    session_id: str
    create_time: datetime
    """With the id, tells this session from one deleted and created again under its id."""
    attribution: Attribution
    through: int
    """The session's message count the window reflects: its newest message's sequence."""
    messages: MessageSpan
    from_session_start: bool
    """`messages` begin with the session's first message."""
    tokens: int
    size: int
    """What the window keeps in memory: its messages, those let go of that its list still
    holds (at most a quarter more), and a fixed overhead."""

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
        held = list(messages)
        tokens = sum(item.token_count for item in held)
        span = MessageSpan.of(held)
        from_start = through <= len(span)
        size = _size(span)
        return cls(session_id, create_time, attribution, through, span, from_start, tokens, size)

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
        length = len(old)
        total = length + len(turn)
        tokens = self.tokens + sum(item.token_count for item in turn)
        start = 0
        while start < total - 1:
            first = old.token_count(start) if start < length else turn[start - length].token_count
            after = tokens - first
            if after <= token_budget or total - start - 1 < min_messages:
                break  # the suffix after `start` would no longer reach past the budget
            tokens = after
            start += 1
        held = old.extended(turn, start)
        through = self.through + len(turn)
        return HistoryWindow(
            self.session_id,
            self.create_time,
            self.attribution,
            through,
            held,
            through <= len(held),
            tokens,
            _size(held),
        )


def _size(span: MessageSpan) -> int:
    count, encoded = span.retained_bytes()
    return WINDOW_OVERHEAD_BYTES + encoded + count * MESSAGE_OVERHEAD_BYTES


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


__all__ = ["HistoryCache", "HistoryWindow", "MessageSpan"]
