"""What the upstream sees: instructions, the budgeted stored turns, then the new messages.

Pure functions over OpenAI-shaped messages, so every rule is unit-tested without a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from memori_server.chat.messages import INSTRUCTION_ROLES, OpenAIMessage
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


def strip_resent(
    stored_tail: Sequence[OpenAIMessage], conversation: Sequence[OpenAIMessage]
) -> list[OpenAIMessage]:
    """The conversation without a leading run that repeats the newest stored messages.

    Apps that send the whole conversation each time resend what the session holds; the
    longest prefix of the request equal to the end of the stored history is dropped.
    """
    longest = min(len(stored_tail), len(conversation))
    for overlap in range(longest, 0, -1):
        if list(stored_tail[len(stored_tail) - overlap :]) == list(conversation[:overlap]):
            return list(conversation[overlap:])
    return list(conversation)


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
