"""A terminal chat with a `/reset` command that starts a fresh conversation.

    MEMORI_TARGET=localhost:50051 python examples/reset_command.py

Type messages; `/reset` forgets everything said so far (a new session), `/quit` ends.
Lines can be piped in too:  printf 'My favourite colour is blue\\n/reset\\n...' | python ...
"""

from __future__ import annotations

import os
import sys

from memori_client import Memori
from openai import OpenAI

MODEL = os.environ.get("MEMORI_EXAMPLE_MODEL", "gpt-4o-mini")


def main() -> None:
    client = OpenAI(api_key=os.environ.get("OPENAI_API_KEY", "unused-with-memori"))
    with Memori().attribution("user-123", "reset-example") as memori:
        memori.llm.register(client)
        print(f"session {memori.session.id} (/reset for a new one, /quit to end)")
        for line in sys.stdin:
            text = line.strip()
            if text == "/quit":
                break
            if text == "/reset":
                memori.reset_session()
                print(f"new session {memori.session.id}")
            elif text:
                stream = client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": text}], stream=True
                )
                with stream:
                    for chunk in stream:
                        if chunk.choices:
                            print(chunk.choices[0].delta.content or "", end="", flush=True)
                print()


if __name__ == "__main__":
    main()
