"""Long-term memory's pure parts: passages, query words, score fusion, budgets, priority."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from memori_server.memory import indexer, passages, ranking

WHEN = datetime(2026, 3, 2, tzinfo=UTC)


def row(seq: int, role: str, content: str | None = None, **fields: Any) -> SimpleNamespace:
    values = {"content_parts": None, "tool_calls": None, **fields}
    return SimpleNamespace(seq=seq, role=role, content=content, create_time=WHEN, **values)


def lines(*rows: SimpleNamespace) -> list[passages.StoredLine]:
    return [line for line in map(passages.line_of, rows) if line is not None]


def test_a_passage_is_a_user_message_with_its_replies() -> None:
    built = passages.passages_of(
        lines(
            row(1, "assistant", "Welcome back!"),
            row(2, "system", "Be brief."),
            row(3, "user", "My dog is called Biscuit."),
            row(4, "assistant", "What a lovely name."),
            row(5, "user", "Book a vet visit."),
            row(
                6, "assistant", None, tool_calls=[{"function": {"name": "book", "arguments": "{}"}}]
            ),
            row(7, "tool", "booked for Monday"),
        )
    )
    assert [(p.seq_first, p.seq_last) for p in built] == [(1, 1), (3, 4), (5, 7)]
    assert built[1].text == "user: My dog is called Biscuit.\nassistant: What a lovely name."
    assert "[called book({})]" in built[2].text
    assert built[1].create_time == WHEN


def test_long_exchanges_split_and_messages_are_cut_by_role() -> None:
    many = [row(1, "user", "u")] + [row(n, "tool", "t") for n in range(2, 10)]
    assert [len(p.lines) for p in passages.passages_of(lines(*many))] == [6, 3]
    (user, reply) = lines(row(1, "user", "x " * 2000), row(2, "assistant", "y " * 2000))
    assert len(user.text) == passages.MAX_MESSAGE_CHARS
    assert user.text.endswith("…")
    assert len(reply.text) == passages.MAX_REPLY_CHARS
    parts = [{"type": "text", "text": "from a part"}, {"type": "image_url", "image_url": {}}]
    (with_parts,) = lines(row(3, "user", None, content_parts=parts))
    assert with_parts.text == "from a part"
    assert lines(row(4, "user", ""), row(5, "developer", "rules")) == []


def test_new_rows_continue_the_last_passage_when_they_start_with_a_reply() -> None:
    assert passages.continues([row(9, "system", "note"), row(10, "assistant", "Sure.")])
    assert not passages.continues([row(10, "user", "Next question")])
    assert not passages.continues([])


def test_query_words_drop_stopwords_repeats_and_syntax() -> None:
    assert ranking.query_words("What is the NAME of my dog, my DOG?") == ["name", "dog"]
    assert ranking.query_words('"scope" OR x_y*') == ["scope", "x", "y"]
    assert len(ranking.query_words(" ".join(f"w{n}" for n in range(50)))) == 32
    match = ranking.fts5_match("mabc", ["dog", "near"])
    assert match == 'scope : "mabc" AND text : ("dog" OR "near")'
    assert ranking.tsquery(["dog", "cat"]) == "dog | cat"


def test_full_text_lifts_but_cannot_outweigh_a_clearly_closer_meaning() -> None:
    assert ranking.saturated(5.0, 5.0) == 0.5
    assert ranking.saturated(-1.0, 5.0) == 0.0
    assert 0.9 < ranking.saturated(1000.0, 5.0) < 1.0
    dense = {"close": 0.62, "tie": 0.40, "other": 0.40}
    lexical = {"weak": 0.99, "tie": 0.5}
    ranked = [item for item, _ in ranking.combined(dense, lexical)]
    assert ranked == ["close", "tie", "other"]  # lexical-only ids are not candidates alone
    assert ranking.ranked_by({"a": 1.0, "b": 3.0}) == [("b", 3.0), ("a", 1.0)]


def test_picking_within_a_page_and_a_budget_passes_over_what_does_not_fit() -> None:
    ranked = [("big", 0.9), ("small", 0.8), ("gone", 0.7), ("mid", 0.6)]
    tokens = {"big": 500, "small": 100, "mid": 300}
    assert ranking.within(ranked, tokens, 10, 700) == [("big", 0.9), ("small", 0.8)]
    assert ranking.within(ranked, tokens, 10, 450) == [("small", 0.8), ("mid", 0.6)]
    assert ranking.within(ranked, tokens, 1, 0) == [("big", 0.9)]


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="POSIX scheduling priority")
def test_the_indexing_thread_runs_at_the_lowest_priority() -> None:
    seen: list[int] = []

    def probe() -> None:
        indexer._lowest_priority()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    assert seen == [19]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < 19  # only that thread
