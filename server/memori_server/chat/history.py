"""What the upstream sees: instructions, the budgeted stored turns, then the new messages.

Pure functions over OpenAI-shaped messages, so every rule is unit-tested without a server.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from memori_server.chat.messages import OpenAIMessage
from memori_server.domain import INSTRUCTION_ROLES
from memori_server.storage.records import HistoryMessage


@dataclass(frozen=True, slots=True)
class Assembly:
    upstream_messages: list[OpenAIMessage]
    """The messages sent upstream, in order."""
    new_messages: list[OpenAIMessage]
    """The request's messages that are new to the session: what gets stored on success."""
    history_count: int
    """How many stored messages were sent."""


def split_instructions(
    messages: Sequence[OpenAIMessage],
) -> tuple[list[OpenAIMessage], list[OpenAIMessage]]:
    """(system and developer messages, the conversation messages), each in request order."""
    instructions = [m for m in messages if m["role"] in INSTRUCTION_ROLES]
    conversation = [m for m in messages if m["role"] not in INSTRUCTION_ROLES]
    return instructions, conversation


def _identity(message: OpenAIMessage) -> object:
    """A hashable value equal for equal messages: the fields themselves for a plain text
    message (most of them, and cheap), canonical JSON for anything with nested values."""
    content = message.get("content")
    if isinstance(content, str) and "tool_calls" not in message and len(message) <= 4:
        return (message["role"], content, message.get("name"), message.get("tool_call_id"))
    return json.dumps(message, sort_keys=True, ensure_ascii=False)


def _keys(messages: Sequence[OpenAIMessage], ids: dict[object, int]) -> list[int]:
    """Each message as a small int: equal messages share one."""
    return [ids.setdefault(_identity(m), len(ids)) for m in messages]


def longest_overlap(tail: Sequence[int], head: Sequence[int]) -> int:
    """The largest k with tail[-k:] == head[:k], in linear time (Knuth-Morris-Pratt)."""
    if not head:
        return 0
    fallback = [0] * len(head)
    matched = 0
    for index in range(1, len(head)):
        while matched and head[index] != head[matched]:
            matched = fallback[matched - 1]
        if head[index] == head[matched]:
            matched += 1
        fallback[index] = matched
    matched = 0
    for item in tail:
        while matched and (matched == len(head) or item != head[matched]):
            matched = fallback[matched - 1]
        if item == head[matched]:
            matched += 1
    return matched


def strip_resent(
    stored_tail: Sequence[OpenAIMessage], conversation: Sequence[OpenAIMessage]
) -> list[OpenAIMessage]:
    """The conversation without a leading run that repeats the newest stored messages.

    Apps that send the whole conversation each time resend what the session holds; the
    longest prefix of the request equal to the end of the stored history is dropped.
    Linear in the number of messages, so a long resent history costs no more than reading it.
    """
    if not stored_tail or not conversation:
        return list(conversation)
    ids: dict[object, int] = {}
    tail = _keys(stored_tail[-len(conversation) :], ids)
    overlap = longest_overlap(tail, _keys(conversation, ids))
    return list(conversation[overlap:])


def within_budget(
    stored: Sequence[HistoryMessage], budget: int, *, from_session_start: bool
) -> list[OpenAIMessage]:
    """The newest whole turns of `stored` whose tokens fit in `budget`.

    A turn starts at a user message, so a trimmed history never begins with an assistant
    reply or a tool result torn from the tool call it answers. `from_session_start` says
    that `stored` begins at the session's first message, which then also starts a turn.
    """
    start = len(stored)
    used = 0
    for index in range(len(stored) - 1, -1, -1):
        used += stored[index].token_count
        if used > budget:
            break
        start = index
    while start < len(stored) and not (
        stored[start].message["role"] == "user" or (start == 0 and from_session_start)
    ):
        start += 1
    return [item.message for item in stored[start:]]


def assemble(
    request_messages: Sequence[OpenAIMessage],
    stored: Sequence[HistoryMessage],
    budget: int,
    *,
    from_session_start: bool,
) -> Assembly:
    """Build the upstream message list and find the messages new to the session."""
    instructions, conversation = split_instructions(request_messages)
    new = strip_resent([item.message for item in stored], conversation)
    history = within_budget(stored, budget, from_session_start=from_session_start)
    return Assembly(
        upstream_messages=[*instructions, *history, *new],
        new_messages=new,
        history_count=len(history),
    )
