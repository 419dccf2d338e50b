"""The life of sessions through the Python client: start, reset, resume, read, delete.

    MEMORI_TARGET=localhost:50051 python examples/session_lifecycle_client.py

(`session_lifecycle.py` shows the same with the raw gRPC stubs, as other languages use them.)
"""

from __future__ import annotations

import os

from memori_client import Memori
from openai import OpenAI

MODEL = os.environ.get("MEMORI_EXAMPLE_MODEL", "gpt-4o-mini")


def main() -> None:
    client = OpenAI(api_key=os.environ.get("OPENAI_API_KEY", "unused-with-memori"))

    def ask(text: str) -> None:
        reply = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": text}]
        )
        print(f"> {text}\n{reply.choices[0].message.content}")

    with Memori().attribution("user-123", "lifecycle-client") as memori:
        memori.llm.register(client)
        first = memori.session.id  # known at once: no call has been made yet
        print(f"first session {first}")
        ask("Let's plan a trip to Lisbon.")

        memori.reset_session()  # a new conversation; Lisbon is not sent any more
        print(f"second session {memori.session.id}")
        ask("Let's talk about cooking instead.")
        second = memori.session.id

        memori.set_session(first)  # back to the trip
        ask("Where were we going?")
        print(f"first session holds {len(memori.session.history())} messages")

        print(f"{len(memori.session.recent())} sessions for user-123/lifecycle-client")
        memori.set_session(second)
        deleted = memori.session.delete()  # the session and all its messages
        print(f"deleted the cooking session ({deleted} messages); now at {memori.session.id}")
        print(f"{len(memori.session.recent())} session left")


if __name__ == "__main__":
    main()
