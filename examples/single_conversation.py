"""One conversation: a fact told in one call is known in the next.

    MEMORI_TARGET=localhost:50051 python examples/single_conversation.py

The app sends only the new message each time; the service adds the session's history.
"""

from __future__ import annotations

import os

from memori_client import Memori
from openai import OpenAI

MODEL = os.environ.get("MEMORI_EXAMPLE_MODEL", "gpt-4o-mini")


def main() -> None:
    # The service holds the upstream key; the app's own key is never sent anywhere.
    client = OpenAI(api_key=os.environ.get("OPENAI_API_KEY", "unused-with-memori"))
    with Memori().attribution("user-123", "birthday-bot") as memori:
        memori.llm.register(client)
        print(f"session {memori.session.id}")
        for text in ["My birthday is May 15th.", "When is my birthday?"]:
            reply = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": text}]
            )
            print(f"> {text}\n{reply.choices[0].message.content}")


if __name__ == "__main__":
    main()
