"""What the upstream sees: instructions, the budgeted stored turns, then the new messages.

Pure functions over OpenAI-shaped messages, so every rule is unit-tested without a server.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from operator import attrgetter

from memori_server.chat.messages import OpenAIMessage
from memori_server.domain import INSTRUCTION_ROLES
from memori_server.storage.history_cache import MessageSpan
from memori_server.storage.records import HistoryMessage, encode_message

_ENCODED = attrgetter("encoded")


@dataclass(frozen=True, slots=True)
class Assembly:
    upstream_messages: list[bytes | bytearray]
    """The messages sent upstream, in order, encoded (`encode_message`): one per piece,
    but for a window held in memory, whose messages come as one piece, joined by commas."""
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


def longest_overlap(tail: Sequence[Hashable], head: Sequence[Hashable]) -> int:
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


def resent_count(stored: Sequence[HistoryMessage], conversation: Sequence[bytes]) -> int:
    """How many of the conversation's first (encoded) messages repeat the newest stored ones.

    Apps that send the whole conversation each time resend what the session holds; the
    longest prefix of the request equal to the end of the stored history is dropped.
    Linear in the number of messages, so a long resent history costs no more than reading it.
    """
    if not stored or not conversation:
        return 0
    tail = [item.encoded for item in stored[-len(conversation) :]]
    return longest_overlap(tail, conversation)


def within_budget(
    stored: Sequence[HistoryMessage],
    budget: int,
    *,
    from_session_start: bool,
    tokens: int | None = None,
) -> Sequence[HistoryMessage]:
    """The newest whole turns of `stored` whose tokens fit in `budget`.

    A turn starts at a user message, so a trimmed history never begins with an assistant
    reply or a tool result torn from the tool call it answers. `from_session_start` says
    that `stored` begins at the session's first message, which then also starts a turn.
    `tokens`, when known, is the sum of `stored`'s tokens: the window then loses its oldest
    messages until it fits, which for a window read for this budget is one or two steps
    instead of a walk over all of it.
    """
    # A held window answers from its columns, without building a message.
    span = stored if isinstance(stored, MessageSpan) else None
    if tokens is None:
        start = len(stored)
        used = 0
        for index in range(len(stored) - 1, -1, -1):
            used += span.token_count(index) if span is not None else stored[index].token_count
            if used > budget:
                break
            start = index
    else:
        start, used = 0, tokens
        while used > budget and start < len(stored):
            used -= span.token_count(start) if span is not None else stored[start].token_count
            start += 1
    while start < len(stored) and not (
        (span.role(start) if span is not None else stored[start].role) == "user"
        or (start == 0 and from_session_start)
    ):
        start += 1
    return stored[start:]


def assemble(
    request_messages: Sequence[OpenAIMessage],
    stored: Sequence[HistoryMessage],
    budget: int,
    *,
    from_session_start: bool,
    recalled: Sequence[OpenAIMessage] = (),
    stored_tokens: int | None = None,
) -> Assembly:
    """Build the upstream message list and find the messages new to the session.
    `recalled` (long-term memory) goes right after the instructions and is never new;
    `stored_tokens`, when known, is the sum of `stored`'s tokens."""
    instructions, conversation = split_instructions(request_messages)
    encoded = [encode_message(message) for message in conversation]
    resent = resent_count(stored, encoded)
    history = within_budget(
        stored, budget, from_session_start=from_session_start, tokens=stored_tokens
    )
    upstream: list[bytes | bytearray] = [
        *(encode_message(message) for message in instructions),
        *(encode_message(message) for message in recalled),
    ]
    if not isinstance(history, MessageSpan):
        upstream += map(_ENCODED, history)
    elif history:  # a held window: its messages' bytes in one copy
        upstream.append(history.joined())
    upstream += encoded[resent:]
    return Assembly(
        upstream_messages=upstream,
        new_messages=list(conversation[resent:]),
        history_count=len(history),
    )
