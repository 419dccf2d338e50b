"""ChatCompletion and chunk payloads shaped like OpenAI's, so the real SDK parses them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from standin_upstream.behaviours import ReplySpec, ToolCallSpec

FINGERPRINT = "fp_standin"
_PIECE = re.compile(r"\s*\S+|\s+")  # word-sized pieces that join back to the exact text
_ARGUMENT_PIECE = 8  # characters of tool-call arguments per streamed delta


@dataclass(slots=True)
class Reply:
    content: str | None
    tool_calls: list[dict[str, Any]]
    finish_reason: str

    def completion_tokens(self) -> int:
        arguments = " ".join(call["function"]["arguments"] for call in self.tool_calls)
        return count_tokens(self.content or "") + count_tokens(arguments)


def message_text(content: object) -> str:
    """Text of a message: the string itself, or its text parts joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def count_tokens(text: str) -> int:
    """A rough token count (words); good enough for usage figures from a test double."""
    return len(text.split())


def prompt_tokens(messages: list[Any]) -> int:
    return sum(
        count_tokens(message_text(m.get("content"))) for m in messages if isinstance(m, dict)
    )


def echo(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return "echo: " + message_text(message.get("content"))
    return "echo: "


def make_reply(spec: ReplySpec | None, messages: list[Any], call_ids: str) -> Reply:
    """The scripted reply, or the echo of the last user message when nothing is scripted."""
    spec = spec or {}
    calls = [
        _tool_call(call, f"call_{call_ids}_{i}")
        for i, call in enumerate(spec.get("tool_calls", []))
    ]
    content = spec["content"] if "content" in spec else (None if calls else echo(messages))
    finish = spec.get("finish_reason", "tool_calls" if calls else "stop")
    return Reply(content, calls, finish)


def _tool_call(spec: ToolCallSpec, default_id: str) -> dict[str, Any]:
    function = spec.get("function", {})
    arguments = function.get("arguments", "{}")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {
        "id": spec.get("id", default_id),
        "type": spec.get("type", "function"),
        "function": {"name": function.get("name", ""), "arguments": arguments},
    }


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def completion(
    reply: Reply, *, completion_id: str, created: int, model: object, n: int, prompt: int
) -> dict[str, Any]:
    """A whole `chat.completion` object with `n` identical choices."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = reply.tool_calls
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": i, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}
            for i in range(n)
        ],
        "usage": usage(prompt, n * reply.completion_tokens()),
        "system_fingerprint": FINGERPRINT,
    }


def error(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """OpenAI's error body shape."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def stream_events(
    reply: Reply,
    *,
    completion_id: str,
    created: int,
    model: object,
    n: int,
    prompt: int,
    include_usage: bool,
    with_finish: bool,
) -> list[bytes]:
    """The SSE `data:` events of a streamed reply, without the closing `[DONE]`."""
    base: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": FINGERPRINT,
    }
    if include_usage:
        base["usage"] = None  # OpenAI sends `usage: null` on every chunk but the last

    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        data = json.dumps({**base, "choices": choices, **extra}, separators=(",", ":"))
        return b"data: " + data.encode() + b"\n\n"

    events: list[bytes] = []
    for index in range(n):
        for delta in _deltas(reply):
            events.append(event([_choice(index, delta, None)]))
        if with_finish:
            events.append(event([_choice(index, {}, reply.finish_reason)]))
    if include_usage:
        events.append(event([], usage=usage(prompt, n * reply.completion_tokens())))
    return events


def _choice(index: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}


def _deltas(reply: Reply) -> list[dict[str, Any]]:
    """Deltas as OpenAI streams them: role first, content by word, then each tool call."""
    first: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    if reply.content is not None:
        first["content"] = ""
    deltas = [first]
    deltas.extend({"content": piece} for piece in _PIECE.findall(reply.content or ""))
    for index, call in enumerate(reply.tool_calls):
        header = {
            "index": index,
            "id": call["id"],
            "type": call["type"],
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        if index == 0 and reply.content is None:
            first["tool_calls"] = [header]  # OpenAI names the first call in the role chunk
        else:
            deltas.append({"tool_calls": [header]})
        arguments = call["function"]["arguments"]
        for start in range(0, len(arguments), _ARGUMENT_PIECE):
            piece = arguments[start : start + _ARGUMENT_PIECE]
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    return deltas
