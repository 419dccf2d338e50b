"""The examples run as documented against a real server; each asserts what the upstream got."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from standin_upstream import StandinThread
from tests.chat_calls import sent_messages
from tests.in_process import InProcessServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
REDIS_URL = os.environ.get("MEMORI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def run_example(name: str, server: InProcessServer, *args: str, stdin: str = "", **env: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        env={**os.environ, "MEMORI_TARGET": server.target, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def texts(upstream: StandinThread, index: int) -> list[str]:
    return [str(message.get("content")) for message in sent_messages(upstream, index)]


def test_session_lifecycle_example(server: InProcessServer) -> None:
    output = run_example("session_lifecycle.py", server)
    assert "after Delete: NOT_FOUND" in output
    assert "1 session(s) active in the last 24 h" in output
    assert "0 stored message(s)" in output


def test_single_conversation_recalls_the_birthday(
    server: InProcessServer, upstream: StandinThread
) -> None:
    upstream.clear()
    output = run_example("single_conversation.py", server)
    assert len(upstream.requests) == 2
    assert texts(upstream, 1) == [
        "My birthday is May 15th.",
        "echo: My birthday is May 15th.",
        "When is my birthday?",
    ]
    assert "echo: When is my birthday?" in output


def test_multi_conversation_keeps_users_and_agents_apart(
    server: InProcessServer, upstream: StandinThread
) -> None:
    upstream.clear()
    output = run_example("multi_conversation.py", server)
    assert len(upstream.requests) == 6
    bob_asks, alice_asks, sales_asks = texts(upstream, 3), texts(upstream, 4), texts(upstream, 5)
    assert bob_asks[0] == "My name is Bob; my parcel is late."
    assert "Alice" not in str(bob_asks)
    assert alice_asks[0] == "My name is Alice and my order is #1001."
    assert "Bob" not in str(alice_asks)
    assert "seats" not in str(alice_asks)  # alice's sales conversation is another session
    assert sales_asks[0] == "I would like three more seats."
    assert "Alice" not in str(sales_asks)
    assert "3 separate sessions" in output


def test_reset_command_forgets_the_colour(server: InProcessServer, upstream: StandinThread) -> None:
    upstream.clear()
    output = run_example(
        "reset_command.py",
        server,
        stdin="My favourite colour is blue\nWhat is my favourite colour?\n/reset\n"
        "What is my favourite colour?\n/quit\n",
    )
    assert len(upstream.requests) == 3
    assert "My favourite colour is blue" in texts(upstream, 1)  # remembered before /reset
    assert texts(upstream, 2) == ["What is my favourite colour?"]  # nothing of it after
    assert "blue" not in str(upstream.requests[2]["body"])
    assert output.count("new session") == 1


def test_persistent_sessions_resume_from_the_table_and_from_the_service(
    server: InProcessServer, upstream: StandinThread, tmp_path: Path
) -> None:
    upstream.clear()
    output = run_example("persistent_sessions.py", server, str(tmp_path / "app.db"))
    assert len(upstream.requests) == 4
    assert texts(upstream, 1)[0] == "I am allergic to peanuts."  # resumed via the app's table
    assert texts(upstream, 3)[0] == "My flight leaves at 9:40."  # resumed via Get(attribution)
    assert "peanuts" not in str(texts(upstream, 3))
    assert output.count("resumed session") == 2
    assert "bob has 1 session(s) active in the last 24 h" in output


def test_session_lifecycle_through_the_client(
    server: InProcessServer, upstream: StandinThread
) -> None:
    upstream.clear()
    output = run_example("session_lifecycle_client.py", server)
    assert texts(upstream, 1) == ["Let's talk about cooking instead."]
    assert texts(upstream, 2)[0] == "Let's plan a trip to Lisbon."
    assert "cooking" not in str(texts(upstream, 2))
    assert "first session holds 4 messages" in output
    assert "2 sessions for user-123/lifecycle-client" in output
    assert "deleted the cooking session (2 messages)" in output
    assert "1 session left" in output


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    connection = redis.Redis.from_url(REDIS_URL)
    connection.ping()  # the machine's Redis must be there: fail loudly otherwise
    prefix = f"memori-test-{uuid.uuid4()}"
    yield prefix
    keys = list(connection.scan_iter(f"{prefix}:*"))
    if keys:
        connection.delete(*keys)
    connection.close()


def test_redis_sessions_resume_within_the_ttl_and_not_after(
    server: InProcessServer, upstream: StandinThread, redis_prefix: str
) -> None:
    upstream.clear()
    output = run_example(
        "redis_sessions.py",
        server,
        REDIS_URL=REDIS_URL,
        MEMORI_EXAMPLE_REDIS_PREFIX=redis_prefix,
    )
    assert len(upstream.requests) == 4
    assert texts(upstream, 1)[0] == "My dog is called Pixel."  # resumed through Redis
    assert texts(upstream, 3) == ["What is my cat called?"]  # the key had expired
    stored = redis.Redis.from_url(REDIS_URL)
    ttl = stored.ttl(f"{redis_prefix}:chat-session:carol")
    assert 86000 < int(ttl) <= 86400
    assert "[dave] a new session after the TTL" in output
    stored.close()
