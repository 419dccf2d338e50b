"""Many conversations at once: one Memori (and one openai client) per user and agent.

    MEMORI_TARGET=localhost:50051 python examples/multi_conversation.py

A Memori object holds one conversation at a time, so a service that talks to many users
keeps one per (user, agent) pair, e.g. in a manager like this one. Each pair has its own
session; nothing leaks between users or between agents of one user.
"""

from __future__ import annotations

import os

from memori_client import Memori
from openai import OpenAI

MODEL = os.environ.get("MEMORI_EXAMPLE_MODEL", "gpt-4o-mini")


class ConversationManager:
    def __init__(self) -> None:
        self._conversations: dict[tuple[str, str], tuple[Memori, OpenAI]] = {}

    def ask(self, user_id: str, agent_id: str, text: str) -> str:
        client = self._conversation(user_id, agent_id)[1]
        reply = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": text}]
        )
        return reply.choices[0].message.content or ""

    def new_conversation(self, user_id: str, agent_id: str) -> None:
        self._conversation(user_id, agent_id)[0].new_session()

    def session_id(self, user_id: str, agent_id: str) -> str:
        return self._conversation(user_id, agent_id)[0].session.id

    def _conversation(self, user_id: str, agent_id: str) -> tuple[Memori, OpenAI]:
        key = (user_id, agent_id)
        if key not in self._conversations:
            client = OpenAI(api_key=os.environ.get("OPENAI_API_KEY", "unused-with-memori"))
            memori = Memori().attribution(user_id, agent_id).llm.register(client)
            self._conversations[key] = (memori, client)
        return self._conversations[key]

    def close(self) -> None:
        for memori, _ in self._conversations.values():
            memori.close()


def main() -> None:
    manager = ConversationManager()
    try:
        turns = [
            ("alice", "support", "My name is Alice and my order is #1001."),
            ("bob", "support", "My name is Bob; my parcel is late."),
            ("alice", "sales", "I would like three more seats."),
            ("bob", "support", "What is my name?"),
            ("alice", "support", "What is my name and order number?"),
            ("alice", "sales", "How many seats did I ask for?"),
        ]
        for user_id, agent_id, text in turns:
            reply = manager.ask(user_id, agent_id, text)
            print(f"[{user_id}/{agent_id}] > {text}\n{reply}")
        sessions = {manager.session_id(u, a) for u, a, _ in turns}
        print(f"{len(sessions)} separate sessions")
    finally:
        manager.close()


if __name__ == "__main__":
    main()
