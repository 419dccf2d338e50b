"""Rebuild the reply from streamed chunks, so a streamed turn is stored like a unary one.

Chunks are the upstream's JSON, whatever it holds: anything that is not the expected shape
is skipped, never an error, so an odd stream can only end as a broken or finished one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_INDEX = 1 << 20  # an index beyond any real choice or tool call count is ignored


@dataclass
class _ChoiceParts:
    content: list[str] = field(default_factory=list)
    has_content: bool = False
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None


def _index(value: Any) -> int | None:
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_INDEX:
        return value
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class StreamAssembly:
    """Accumulates content and tool-call fragments per choice."""

    def __init__(self) -> None:
        self._choices: dict[int, _ChoiceParts] = {}

    def add(self, chunk: dict[str, Any]) -> None:
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict) or (index := _index(choice.get("index"))) is None:
                continue
            parts = self._choices.setdefault(index, _ChoiceParts())
            delta = _dict(choice.get("delta"))
            content = delta.get("content")
            if isinstance(content, str):
                parts.content.append(content)
                parts.has_content = True
            self._add_tool_calls(parts, delta.get("tool_calls"))
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                parts.finish_reason = finish_reason if isinstance(finish_reason, str) else "stop"

    @staticmethod
    def _add_tool_calls(parts: _ChoiceParts, fragments: Any) -> None:
        for fragment in fragments if isinstance(fragments, list) else ():
            if not isinstance(fragment, dict) or (index := _index(fragment.get("index"))) is None:
                continue
            slot = parts.tool_calls.setdefault(
                index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            if _text(fragment.get("id")):
                slot["id"] = fragment["id"]
            if _text(fragment.get("type")):
                slot["type"] = fragment["type"]
            function = _dict(fragment.get("function"))
            slot["function"]["name"] += _text(function.get("name"))
            slot["function"]["arguments"] += _text(function.get("arguments"))

    @property
    def finished(self) -> bool:
        """Every choice that appeared got a finish reason: the stream is complete."""
        return bool(self._choices) and all(
            parts.finish_reason is not None for parts in self._choices.values()
        )

    def reply(self) -> dict[str, Any]:
        """Choice 0's message as a unary response would have carried it."""
        parts = self._choices.get(0) or _ChoiceParts()
        message: dict[str, Any] = {"role": "assistant"}
        message["content"] = "".join(parts.content) if parts.has_content else None
        if parts.tool_calls:
            message["tool_calls"] = [parts.tool_calls[index] for index in sorted(parts.tool_calls)]
        return message
