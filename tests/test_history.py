"""History assembly rules, unit-tested without a server (memori_server.chat.history)."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from memori_server.chat.history import (
    assemble,
    resent_count,
    split_instructions,
    within_budget,
)
from memori_server.chat.messages import OpenAIMessage
from memori_server.chat.upstream import encode_body
from memori_server.storage.history_cache import MessageSpan
from memori_server.storage.records import HistoryMessage, encode_message
from memori_server.tokens import bundled_encoding, count_message, encoding_for


def user(text: str) -> OpenAIMessage:
    return {"role": "user", "content": text}


def assistant(text: str) -> OpenAIMessage:
    return {"role": "assistant", "content": text}


def tool_call(call_id: str) -> OpenAIMessage:
    return {
        "role": "assistant",
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }


def tool_result(call_id: str) -> OpenAIMessage:
    return {"role": "tool", "content": "42", "tool_call_id": call_id}


def stored(*messages: OpenAIMessage, tokens: int = 10) -> list[HistoryMessage]:
    return [HistoryMessage(m["role"], encode_message(m), tokens) for m in messages]


def decoded(
    messages: Sequence[HistoryMessage] | Sequence[bytes | bytearray],
) -> list[OpenAIMessage]:
    """Messages as the upstream reads them (a piece may hold several, joined by commas)."""
    pieces = [m.encoded if isinstance(m, HistoryMessage) else bytes(m) for m in messages]
    return [message for piece in pieces for message in json.loads(b"[" + piece + b"]")]


def new_of(history: list[OpenAIMessage], conversation: list[OpenAIMessage]) -> list[OpenAIMessage]:
    """The conversation without what resends the end of `history`."""
    resent = resent_count(stored(*history), [encode_message(m) for m in conversation])
    return conversation[resent:]


def test_instructions_go_first_then_history_then_new_messages() -> None:
    request = [user("new question"), {"role": "system", "content": "be brief"}]
    result = assemble(
        request, stored(user("old"), assistant("old answer")), 1000, from_session_start=True
    )
    assert decoded(result.upstream_messages) == [
        {"role": "system", "content": "be brief"},
        user("old"),
        assistant("old answer"),
        user("new question"),
    ]
    assert result.new_messages == [user("new question")]
    assert result.history_count == 2


def test_developer_messages_count_as_instructions() -> None:
    instructions, conversation = split_instructions(
        [{"role": "developer", "content": "d"}, user("u")]
    )
    assert instructions == [{"role": "developer", "content": "d"}]
    assert conversation == [user("u")]


def test_a_full_history_app_is_not_duplicated() -> None:
    history = stored(user("a"), assistant("A"), user("b"), assistant("B"))
    request = [
        {"role": "system", "content": "s"},
        user("a"),
        assistant("A"),
        user("b"),
        assistant("B"),
        user("c"),
    ]
    result = assemble(request, history, 1000, from_session_start=True)
    assert result.new_messages == [user("c")]
    assert decoded(result.upstream_messages) == [
        {"role": "system", "content": "s"},
        user("a"),
        assistant("A"),
        user("b"),
        assistant("B"),
        user("c"),
    ]


def test_a_repeated_question_is_new_not_a_resend() -> None:
    history = [user("hi"), assistant("hello")]
    assert new_of(history, [user("hi")]) == [user("hi")]
    assert new_of(history, [assistant("hello"), user("hi")]) == [user("hi")]
    assert new_of([], [user("hi")]) == [user("hi")]


def test_the_budget_keeps_the_newest_whole_turns() -> None:
    history = stored(user("1"), assistant("1"), user("2"), assistant("2"), user("3"), tokens=10)
    assert decoded(within_budget(history, 30, from_session_start=True)) == [
        user("2"),
        assistant("2"),
        user("3"),
    ]
    # 20 tokens would fit assistant("2") + user("3"), but a turn is never cut in half.
    assert decoded(within_budget(history, 20, from_session_start=True)) == [user("3")]
    assert decoded(within_budget(history, 9, from_session_start=True)) == []
    assert decoded(within_budget(history, 0, from_session_start=True)) == []
    assert decoded(within_budget(history, 1000, from_session_start=True)) == decoded(history)


@pytest.mark.parametrize("seed", range(40))
def test_a_window_whose_tokens_are_known_is_trimmed_to_the_same_messages(seed: int) -> None:
    """Trimmed from its old end when its sum is known (a held window), from its new end
    otherwise: the same turns either way, whatever the counts, roles and budget."""
    rng = random.Random(seed)
    roles = [rng.choice(["user", "assistant", "tool"]) for _ in range(rng.randint(0, 60))]
    history = [
        HistoryMessage(role, encode_message({"role": role, "content": str(n)}), rng.randint(0, 40))
        for n, role in enumerate(roles)
    ]
    total = sum(item.token_count for item in history)
    for budget in (0, 1, rng.randint(0, total + 1), total - 1, total, total + 5):
        for from_start in (True, False):
            walked = within_budget(history, budget, from_session_start=from_start)
            known = within_budget(history, budget, from_session_start=from_start, tokens=total)
            assert list(known) == list(walked), (budget, from_start)


@pytest.mark.parametrize("seed", range(40))
def test_a_held_window_assembles_the_body_a_list_of_its_messages_would(seed: int) -> None:
    """A window held between calls (a span of a log that holds messages before and after
    it) gives the same upstream body, new messages and history count as the same messages
    read from the database: trimmed to any budget, with or without a known sum, with a
    request that resends its tail or not."""
    rng = random.Random(seed)
    roles = [rng.choice(["user", "assistant", "tool"]) for _ in range(rng.randint(0, 40))]
    messages = [
        HistoryMessage(
            role,
            encode_message({"role": role, "content": f'{n} \u2603 "q",'}),
            rng.randint(0, 40),
        )
        for n, role in enumerate(roles)
    ]
    before, after = rng.randint(0, 5), rng.randint(0, 5)
    log = [*stored(*(user(f"older {n}") for n in range(before))), *messages]
    log += stored(*(user(f"later {n}") for n in range(after)))
    held = MessageSpan.of(log)[before : before + len(messages)]
    assert held == messages
    total = sum(item.token_count for item in messages)
    resent = [json.loads(item.encoded) for item in messages[len(messages) - rng.randint(0, 3) :]]
    request = [{"role": "system", "content": "s"}, *resent, user("new")]
    for budget in (0, rng.randint(0, total + 1), total + 5):
        for tokens in (None, total):
            from_start = rng.random() < 0.5
            results = [
                assemble(
                    request, window, budget, from_session_start=from_start, stored_tokens=tokens
                )
                for window in (held, messages)
            ]
            bodies = [
                encode_body({"model": "m"}, r.upstream_messages, stream=False) for r in results
            ]
            assert bodies[0] == bodies[1]
            assert json.loads(bodies[0])["messages"] == decoded(results[1].upstream_messages)
            assert results[0].new_messages == results[1].new_messages
            assert results[0].history_count == results[1].history_count


def test_a_tool_call_is_never_separated_from_its_results() -> None:
    history = stored(
        user("weather?"),
        tool_call("c1"),
        tool_result("c1"),
        assistant("sunny"),
        user("and tomorrow?"),
        tool_call("c2"),
        tool_result("c2"),
        assistant("rain"),
    )
    # 30 tokens fit the last three messages, which would start with a tool result.
    kept = decoded(within_budget(history, 30, from_session_start=True))
    assert kept == []
    kept = decoded(within_budget(history, 40, from_session_start=True))
    assert kept == [user("and tomorrow?"), tool_call("c2"), tool_result("c2"), assistant("rain")]


def test_a_window_not_at_the_session_start_begins_at_a_user_message() -> None:
    history = stored(assistant("tail of an older turn"), user("q"), assistant("a"))
    assert decoded(within_budget(history, 1000, from_session_start=False)) == [
        user("q"),
        assistant("a"),
    ]
    assert decoded(within_budget(history, 1000, from_session_start=True))[0] == assistant(
        "tail of an older turn"
    )


def test_token_counts_work_offline_and_treat_special_tokens_as_text() -> None:
    encoding = encoding_for("gpt-4o-mini")
    assert encoding.name in ("cl100k_base", "o200k_base")
    plain = count_message(bundled_encoding(), user("hello world"))
    special = count_message(bundled_encoding(), user("hello <|endoftext|> world"))
    assert 3 < plain < special
    assert encoding_for("llama3.2:1b") is bundled_encoding()  # unknown model: an estimate
    parts = {
        "role": "user",
        "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "x"}},
        ],
    }
    assert count_message(bundled_encoding(), parts) > 85
    calls = count_message(bundled_encoding(), tool_call("c1"))
    assert calls > 3


def test_without_cached_encodings_nothing_is_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # an empty cache
    encoding_for.cache_clear()
    try:
        assert encoding_for("gpt-4o") is bundled_encoding()
        assert list(tmp_path.iterdir()) == []
    finally:
        encoding_for.cache_clear()


def test_the_upstream_body_means_what_encoding_it_whole_would() -> None:
    rng = random.Random(11)
    for _ in range(300):
        parameters: dict[str, object] = {"model": "m"} if rng.random() < 0.8 else {}
        if rng.random() < 0.5:
            parameters["temperature"] = rng.random()
        if rng.random() < 0.3:
            parameters["tools"] = [{"type": "function", "function": {"name": "f\u00e9"}}]
        messages = [
            rng.choice([user(f'q{n} \u2603 "quoted"'), assistant(f"a{n}"), tool_call(f"c{n}")])
            for n in range(rng.randint(0, 6))
        ]
        stream = rng.random() < 0.5
        body = encode_body(parameters, [encode_message(m) for m in messages], stream=stream)
        expected = {**parameters, "messages": messages, **({"stream": True} if stream else {})}
        assert json.loads(body) == expected
