"""Resume a user's conversation after a restart, if it was active in the last 24 hours.

    MEMORI_TARGET=localhost:50051 python examples/persistent_sessions.py [app.db]

Two ways, each shown across two "runs" of an app (a new Memori and client each time):
1. the app keeps the session id in its own database table (here SQLite), as apps using the
   Memori SDK do, and resumes it with `set_session(id)`;
2. the service keeps it: every call makes its session the attribution's current session,
   and `session.resume_current()` (SessionService.Get by attribution) finds it again within
   the service's idle window (24 h by default). `session.recent(within=...)`
   (SessionService.List) lists the attribution's recent sessions.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from memori_client import Memori
from openai import OpenAI

MODEL = os.environ.get("MEMORI_EXAMPLE_MODEL", "gpt-4o-mini")
DAY = timedelta(hours=24)


class SessionTable:
    """The app's own record of each user's latest session and when it was last used."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS chat_sessions"
            " (user_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, last_used REAL NOT NULL)"
        )

    def recent(self, user_id: str, within: timedelta) -> str | None:
        row = self._db.execute(
            "SELECT session_id FROM chat_sessions WHERE user_id = ? AND last_used > ?",
            (user_id, time.time() - within.total_seconds()),
        ).fetchone()
        return str(row[0]) if row else None

    def save(self, user_id: str, session_id: str) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO chat_sessions VALUES (?, ?, ?) ON CONFLICT (user_id)"
                " DO UPDATE SET session_id = excluded.session_id, last_used = excluded.last_used",
                (user_id, session_id, time.time()),
            )


def ask(client: OpenAI, text: str) -> str:
    reply = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": text}]
    )
    return reply.choices[0].message.content or ""


def run_with_own_table(table: SessionTable, text: str) -> None:
    client = OpenAI(api_key=os.environ.get("OPENAI_API_KEY", "unused-with-memori"))
    with Memori().attribution("alice", "persistent-example") as memori:
        memori.llm.register(client)
        saved = table.recent("alice", DAY)
        if saved is not None:
            memori.set_session(saved)
        print(f"[own table] {'resumed' if saved else 'new'} session {memori.session.id}")
        print(f"> {text}\n{ask(client, text)}")
        table.save("alice", memori.session.id)


def run_with_service_state(text: str) -> None:
    client = OpenAI(api_key=os.environ.get("OPENAI_API_KEY", "unused-with-memori"))
    with Memori().attribution("bob", "persistent-example") as memori:
        memori.llm.register(client)
        resumed = memori.session.resume_current()
        print(f"[service] {'resumed' if resumed else 'new'} session {memori.session.id}")
        print(f"> {text}\n{ask(client, text)}")
        recent = memori.session.recent(within=DAY)
        print(f"[service] bob has {len(recent)} session(s) active in the last 24 h")


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "app.db"
    table = SessionTable(path)
    run_with_own_table(table, "I am allergic to peanuts.")
    run_with_own_table(table, "Suggest a snack for me.")  # a later run: same session
    run_with_service_state("My flight leaves at 9:40.")
    run_with_service_state("When does my flight leave?")


if __name__ == "__main__":
    main()
