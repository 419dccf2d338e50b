"""Rebuild the reply from streamed chunks, so a streamed turn is stored like a unary one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class _ChoiceParts:
    content: list[str] = field(default_factory=list)
    has_content: bool = False
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None


class StreamAssembly:
    """Accumulates content and tool-call fragments per choice."""

    def __init__(self) -> None:
        self._choices: dict[int, _ChoiceParts] = {}

    def add(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            parts = self._choices.setdefault(int(choice.get("index") or 0), _ChoiceParts())
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str):
                parts.content.append(content)
                parts.has_content = True
            for fragment in delta.get("tool_calls") or ():
                slot = parts.tool_calls.setdefault(
                    int(fragment.get("index") or 0),
                    {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
                )
                if fragment.get("id"):
                    slot["id"] = fragment["id"]
                if fragment.get("type"):
                    slot["type"] = fragment["type"]
                function = fragment.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                parts.finish_reason = str(choice["finish_reason"])

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
