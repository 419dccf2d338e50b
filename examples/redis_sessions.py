"""Session ids kept in Redis with a time to live: a conversation resumes while it is fresh.

    MEMORI_TARGET=localhost:50051 REDIS_URL=redis://127.0.0.1:6379/0 \\
        python examples/redis_sessions.py

Each message refreshes the key's TTL (a sliding expiry, 24 h here), so an active user keeps
their conversation and one who comes back after the TTL starts a new one. Needs `redis`
(pip install redis).
"""

from __future__ import annotations

import os
import time

import redis
from memori_client import Memori
from openai import OpenAI

MODEL = os.environ.get("MEMORI_EXAMPLE_MODEL", "gpt-4o-mini")
PREFIX = os.environ.get("MEMORI_EXAMPLE_REDIS_PREFIX", "memori-example")
TTL_SECONDS = 24 * 60 * 60


class RedisSessionStore:
    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self._redis = client
        self._ttl = ttl_seconds

    def _key(self, user_id: str) -> str:
        return f"{PREFIX}:chat-session:{user_id}"

    def get(self, user_id: str) -> str | None:
        value = self._redis.get(self._key(user_id))
        return value.decode() if isinstance(value, bytes) else None

    def touch(self, user_id: str, session_id: str) -> None:
        self._redis.set(self._key(user_id), session_id, ex=self._ttl)

    def ttl(self, user_id: str) -> int:
        return int(self._redis.ttl(self._key(user_id)))


def handle_message(store: RedisSessionStore, user_id: str, text: str) -> str:
    """One request of a stateless web handler: everything it needs comes from Redis."""
    client = OpenAI(api_key=os.environ.get("OPENAI_API_KEY", "unused-with-memori"))
    with Memori().attribution(user_id, "redis-example") as memori:
        memori.llm.register(client)
        saved = store.get(user_id)
        if saved is not None:
            memori.set_session(saved)
        reply = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": text}]
        )
        store.touch(user_id, memori.session.id)
        print(f"[{user_id}] {'resumed' if saved else 'new'} session {memori.session.id}")
        print(f"> {text}\n{reply.choices[0].message.content}")
        return memori.session.id


def main() -> None:
    connection = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    store = RedisSessionStore(connection, TTL_SECONDS)
    handle_message(store, "carol", "My dog is called Pixel.")
    handle_message(store, "carol", "What is my dog called?")
    print(f"[carol] session expires in {store.ttl('carol')} s unless she writes again")

    # A short TTL shows what happens when a user comes back too late.
    brief = RedisSessionStore(connection, ttl_seconds=1)
    first = handle_message(brief, "dave", "My cat is called Miso.")
    time.sleep(1.5)
    second = handle_message(brief, "dave", "What is my cat called?")
    print(f"[dave] {'same' if first == second else 'a new'} session after the TTL")


if __name__ == "__main__":
    main()
