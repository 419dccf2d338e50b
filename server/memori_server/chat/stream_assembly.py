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


# Chunk fields that describe the whole completion; kept from the chunks that carry them.
_COMPLETION_FIELDS = ("id", "created", "model", "system_fingerprint", "service_tier")


class StreamAssembly:
    """Accumulates content and tool-call fragments per choice, and the completion's fields."""

    def __init__(self) -> None:
        self._choices: dict[int, _ChoiceParts] = {}
        self._fields: dict[str, Any] = {}
        self._usage: Any = None

    def add(self, chunk: dict[str, Any]) -> None:
        for name in _COMPLETION_FIELDS:
            if chunk.get(name) is not None:
                self._fields.setdefault(name, chunk[name])
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
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

    def reply(self, index: int = 0) -> dict[str, Any]:
        """A choice's message as a unary response would have carried it."""
        parts = self._choices.get(index) or _ChoiceParts()
        message: dict[str, Any] = {"role": "assistant"}
        message["content"] = "".join(parts.content) if parts.has_content else None
        if parts.tool_calls:
            message["tool_calls"] = [parts.tool_calls[index] for index in sorted(parts.tool_calls)]
        return message

    def completion(self) -> dict[str, Any]:
        """The whole stream as one chat completion (every choice, the usage if it came): the
        lean form a request id keeps, from which a replay is chunked again."""
        completion: dict[str, Any] = {**self._fields, "object": "chat.completion"}
        completion["choices"] = [
            {
                "index": index,
                "message": self.reply(index),
                "finish_reason": self._choices[index].finish_reason,
            }
            for index in sorted(self._choices)
        ]
        if self._usage is not None:
            completion["usage"] = self._usage
        return completion


def rechunk(completion: dict[str, Any]) -> list[dict[str, Any]]:
    """A stream that says what `completion` says: per choice one chunk with the whole
    message, one with its finish reason, then the usage (as `include_usage` sends it)."""
    head = {name: completion[name] for name in _COMPLETION_FIELDS if name in completion}
    head["object"] = "chat.completion.chunk"
    chunks: list[dict[str, Any]] = []
    choices = completion.get("choices") or []
    for choice in choices:
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": "assistant"}
        if message.get("content") is not None:
            delta["content"] = message["content"]
        if message.get("tool_calls"):
            delta["tool_calls"] = [
                {"index": number, **call} for number, call in enumerate(message["tool_calls"])
            ]
        chunks.append(
            {**head, "choices": [{"index": choice["index"], "delta": delta, "finish_reason": None}]}
        )
    for choice in choices:
        chunks.append(
            {
                **head,
                "choices": [
                    {
                        "index": choice["index"],
                        "delta": {},
                        "finish_reason": choice["finish_reason"],
                    }
                ],
            }
        )
    if "usage" in completion:
        chunks.append({**head, "choices": [], "usage": completion["usage"]})
    return chunks
