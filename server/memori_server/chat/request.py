"""A validated ChatCompletionRequest: the new messages and every other upstream parameter."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memori_proto.v1 import chat_pb2, common_pb2

from memori_server.chat.content_urls import urls_in
from memori_server.chat.messages import OpenAIMessage, from_pb, struct_dicts
from memori_server.chat.parameters import (
    OPENAI_EXTRA_PARAMETERS,
    OPTIONAL_SCALARS,
    TYPED_PARAMETERS,
)
from memori_server.chat.struct_values import NotJson, struct_json, value_json
from memori_server.validation import Violations

MAX_MODEL_CHARS = 256


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The operator's bounds on one chat request."""

    max_messages: int = 2048
    max_choices: int = 16
    extra_parameters: frozenset[str] = OPENAI_EXTRA_PARAMETERS


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: list[OpenAIMessage]
    parameters: dict[str, Any]
    """Everything but `messages` and `stream`, as sent upstream."""
    content_urls: list[tuple[str, str]]
    """(field, URL) of every URL in the messages' content parts, for the URL policy."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (JSON numbers are finite)")


def _extra(text: str, allowed: frozenset[str], violations: Violations) -> dict[str, Any]:
    if not text:
        return {}
    try:
        extra = json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:
        violations.add("request.extra_json", f"not valid JSON: {error}")
        return {}
    except RecursionError:
        violations.add("request.extra_json", "nested too deeply")
        return {}
    if not isinstance(extra, dict):
        violations.add("request.extra_json", "must be a JSON object of OpenAI parameters")
        return {}
    try:  # JSON escapes can spell lone surrogates, which no upstream body can carry
        json.dumps(extra, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        violations.add("request.extra_json", "holds invalid Unicode (a lone surrogate escape)")
        return {}
    clashes = sorted(TYPED_PARAMETERS.intersection(extra))
    if clashes:
        violations.add(
            "request.extra_json",
            f"{', '.join(clashes)} must not be given here: use the typed field"
            " (stream is decided by the RPC: Complete or StreamComplete)",
        )
    unknown = sorted(set(extra) - allowed - TYPED_PARAMETERS)
    if unknown:
        shown = ", ".join(repr(name[:64]) for name in unknown[:10])
        violations.add(
            "request.extra_json",
            f"{shown}: not an OpenAI chat completions parameter; the operator can allow "
            "upstream-specific ones with --extra-parameters",
        )
    return extra


_NEW_ONLY = "the session keeps the history: send only the new messages"


def parse_messages(
    messages: Sequence[common_pb2.ChatMessage],
    limits: RequestLimits,
    field: str,
    violations: Violations,
    too_many_hint: str,
) -> tuple[list[OpenAIMessage], list[tuple[str, str]]]:
    """Messages to store in a session, in OpenAI's shape, and (field, URL) of every URL in
    their content parts (for the URL policy); problems are added to `violations` under
    `field`. More than the limit are not looked at one by one."""
    if not messages:
        violations.add(field, "required: at least one message")
    if len(messages) > limits.max_messages:
        violations.add(
            field,
            f"{len(messages)} messages; at most {limits.max_messages} per request "
            f"({too_many_hint})",
        )
        return [], []
    parsed = [
        from_pb(message, f"{field}[{index}]", violations) for index, message in enumerate(messages)
    ]
    content_urls = [
        found
        for index, message in enumerate(parsed)
        if isinstance(message.get("content"), list)
        for found in urls_in(message["content"], f"{field}[{index}].content_parts")
    ]
    return parsed, content_urls


def parse(
    request: chat_pb2.ChatCompletionRequest, limits: RequestLimits, violations: Violations
) -> ChatRequest:
    """Validate the request; every problem is added to `violations` with its field path."""
    if not request.model:
        violations.add("request.model", "required: the upstream model, e.g. 'gpt-4o-mini'")
    elif len(request.model) > MAX_MODEL_CHARS:
        violations.add("request.model", f"at most {MAX_MODEL_CHARS} characters")
    messages, content_urls = parse_messages(
        request.messages, limits, "request.messages", violations, _NEW_ONLY
    )
    if len(request.messages) > limits.max_messages:
        return ChatRequest(model=request.model, messages=[], parameters={}, content_urls=[])
    parameters: dict[str, Any] = {"model": request.model}
    for name in OPTIONAL_SCALARS:
        if request.HasField(name):  # type: ignore[arg-type]  # names of optional fields
            value = getattr(request, name)
            if isinstance(value, float) and not math.isfinite(value):
                violations.add(f"request.{name}", "must be a finite number")
            parameters[name] = value
    if request.HasField("n") and not 1 <= request.n <= limits.max_choices:
        violations.add("request.n", f"{request.n}: give 1 to {limits.max_choices} choices")
    if request.stop:
        parameters["stop"] = list(request.stop)
    if request.tools:
        parameters["tools"] = struct_dicts(request.tools, "request.tools", violations)
    try:
        if request.HasField("tool_choice"):
            parameters["tool_choice"] = value_json(request.tool_choice)
    except NotJson as error:
        violations.add("request.tool_choice", str(error))
    try:
        if request.HasField("response_format"):
            parameters["response_format"] = struct_json(request.response_format)
    except NotJson as error:
        violations.add("request.response_format", str(error))
    if request.user:
        parameters["user"] = request.user
    parameters.update(_extra(request.extra_json, limits.extra_parameters, violations))
    return ChatRequest(
        model=request.model, messages=messages, parameters=parameters, content_urls=content_urls
    )
