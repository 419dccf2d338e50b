"""SQLite's inline writes never block the event loop: a held write lock sends them to the
thread path, which waits for it while other calls go on."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from memori_proto.v1 import chat_pb2_grpc, session_pb2, session_pb2_grpc

from standin_upstream import StandinThread
from tests.chat_calls import complete, user
from tests.conftest import make_settings
from tests.databases import sqlite_url
from tests.factories import attribution
from tests.in_process import InProcessServer


def test_a_held_write_lock_makes_a_turn_wait_without_blocking_other_calls(
    tmp_path: Path, upstream: StandinThread
) -> None:
    url = sqlite_url(tmp_path)
    server = InProcessServer(make_settings(url, upstream_base_url=upstream.base_url))
    try:
        with grpc.insecure_channel(server.target) as channel, ThreadPoolExecutor(1) as pool:
            chat = chat_pb2_grpc.ChatServiceStub(channel)
            sessions = session_pb2_grpc.SessionServiceStub(channel)
            who = attribution()
            first = complete(chat, who, user("before the lock"))
            blocker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
            try:
                waiting = pool.submit(complete, chat, who, user("while locked"))
                time.sleep(0.5)
                assert not waiting.done()
                # The event loop is free: reads are answered while the turn waits.
                got = sessions.Get(session_pb2.GetRequest(session_id=first.session.id))
                assert got.session.message_count == 2
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            answer = waiting.result(timeout=30)
            assert answer.session.message_count == 4
            # The inline writer works again once the lock is free.
            assert complete(chat, who, user("after the lock")).session.message_count == 6
            assert sessions.Reset(session_pb2.ResetRequest(attribution=who)).session.id
    finally:
        server.close()
