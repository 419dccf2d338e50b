"""The character rules of ids that requests carry (entity, process and request ids)."""

from __future__ import annotations

import pytest
from memori_server.validation import Violations, attribution, request_id


@pytest.mark.parametrize("bad", ["\x00", "\t", "\n", "\x1f", "\x7f"])
def test_ids_with_control_characters_are_refused(bad: str) -> None:
    violations = Violations()
    attribution(f"user{bad}1", f"agent{bad}", "attribution", violations)
    request_id(f"req{bad}1", "request_id", violations)
    assert violations.items == [
        ("attribution.entity_id", "contains control characters"),
        ("attribution.process_id", "contains control characters"),
        ("request_id", "must not contain spaces or control characters"),
    ]


def test_a_space_is_refused_in_a_request_id_only() -> None:
    violations = Violations()
    attribution("user 1", "my agent", "attribution", violations)
    assert violations.items == []
    request_id("req 1", "request_id", violations)
    assert violations.items == [("request_id", "must not contain spaces or control characters")]


@pytest.mark.parametrize("good", ["user-123", "Zoë", "用户", "😀", "a\x80b", "x" * 100])
def test_printable_ids_in_any_script_are_taken(good: str) -> None:
    violations = Violations()
    taken = attribution(good, good, "attribution", violations)
    assert request_id(good, "request_id", violations) == good
    assert violations.items == []
    assert (taken.entity_id, taken.process_id) == (good, good)
