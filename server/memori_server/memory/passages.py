"""The unit of long-term memory: a passage, one user message with the replies that follow it.

A question asked later ("what's my dog called?") is answered by what the user said and how
the assistant took it up, so the exchange is indexed together: its words for full-text
search, its meaning for the embedding. Pure functions over stored rows, tested alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memori_server.domain import INSTRUCTION_ROLES

# A long message (a pasted document, a generated essay) is cut: a passage must stay a
# recallable memory, not a page, and its embedding only reads the beginning anyway. What
# the user said is kept longer than the replies: it holds what is theirs to remember, and a
# reply's gist is enough to recall the exchange (measured: cutting replies to a few
# sentences fits more memories in a recall budget and indexes faster).
MAX_MESSAGE_CHARS = 1200
MAX_REPLY_CHARS = 280
# An exchange with a long tool loop is split, so one passage stays within a recall budget.
MAX_PASSAGE_MESSAGES = 6


@dataclass(frozen=True, slots=True)
class StoredLine:
    """What memory keeps of a stored message: its sequence, role, text and time."""

    sequence: int
    role: str
    text: str
    create_time: datetime


@dataclass(frozen=True, slots=True)
class Passage:
    lines: tuple[StoredLine, ...]

    @property
    def seq_first(self) -> int:
        return self.lines[0].sequence

    @property
    def seq_last(self) -> int:
        return self.lines[-1].sequence

    @property
    def create_time(self) -> datetime:
        return self.lines[0].create_time

    @property
    def text(self) -> str:
        return "\n".join(f"{line.role}: {line.text}" for line in self.lines)


def _clipped(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def message_text(content: str | None, parts: Any, tool_calls: Any) -> str:
    """The words of a stored message: its text, the text of its parts, the tools it called."""
    pieces: list[str] = []
    if content:
        pieces.append(content)
    for part in parts if isinstance(parts, list) else ():
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            pieces.append(part["text"])
    for call in tool_calls if isinstance(tool_calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            pieces.append(f"[called {function.get('name', '')}({function.get('arguments', '')})]")
    return " ".join(pieces)


def line_of(row: Any) -> StoredLine | None:
    """A `messages_after` row as a line, or None for what memory leaves out: the app's
    instructions (system, developer) and messages without words."""
    if row.role in INSTRUCTION_ROLES:
        return None
    limit = MAX_MESSAGE_CHARS if row.role == "user" else MAX_REPLY_CHARS
    text = _clipped(message_text(row.content, row.content_parts, row.tool_calls), limit)
    if not text:
        return None
    return StoredLine(int(row.seq), row.role, text, row.create_time)


def passages_of(lines: Iterable[StoredLine]) -> list[Passage]:
    """Lines grouped into passages: each user line starts one; the lines before the first
    user line (a session that starts with a reply, say) form one of their own."""
    result: list[Passage] = []
    current: list[StoredLine] = []
    for line in lines:
        if current and (line.role == "user" or len(current) >= MAX_PASSAGE_MESSAGES):
            result.append(Passage(tuple(current)))
            current = []
        current.append(line)
    if current:
        result.append(Passage(tuple(current)))
    return result


def continues(rows: Sequence[Any]) -> bool:
    """Whether newly stored rows continue the session's last passage (their first line is a
    reply), which is then built again with them."""
    first = next((line for line in map(line_of, rows) if line is not None), None)
    return first is not None and first.role != "user"


__all__ = ["Passage", "StoredLine", "continues", "line_of", "message_text", "passages_of"]
