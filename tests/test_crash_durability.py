"""kill -9 under load: every acknowledged turn survives, and no turn is stored by half."""

from __future__ import annotations

import signal
import threading
import time

import grpc
from memori_proto.v1 import chat_pb2_grpc, session_pb2, session_pb2_grpc

from tests.chat_calls import complete, user
from tests.factories import attribution, new_id
from tests.server_process import ServerProcess
from tests.standin_process import StandinProcess

CALLERS = 32
LOAD_SECONDS = 2.0


def _caller(target: str, session_id: str, acknowledged: list[str], stop: threading.Event) -> None:
    """Turns in one session until the server dies; records the text of each acknowledged."""
    who = attribution()
    with grpc.insecure_channel(target) as channel:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        turn = 0
        while not stop.is_set():
            text = f"{session_id} turn {turn}"
            try:
                complete(chat, who, user(text), session_id=session_id, timeout=5)
            except grpc.RpcError:
                return  # the server is gone: this call may or may not have been stored
            acknowledged.append(text)
            turn += 1


def test_kill_9_loses_no_acknowledged_turn_and_stores_no_half_turn(
    fresh_database_url: str,
) -> None:
    with StandinProcess() as standin:
        args = ("--upstream-base-url", standin.base_url)
        server = ServerProcess(fresh_database_url, *args)
        server.wait_ready()
        sessions = [new_id() for _ in range(CALLERS)]
        acknowledged: dict[str, list[str]] = {session: [] for session in sessions}
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=_caller, args=(server.target, s, acknowledged[s], stop), daemon=True
            )
            for s in sessions
        ]
        for thread in threads:
            thread.start()
        time.sleep(LOAD_SECONDS)
        server.signal(signal.SIGKILL)
        server.wait(10)
        stop.set()
        for thread in threads:
            thread.join(10)
        assert sum(len(texts) for texts in acknowledged.values()) > CALLERS, "too little load"
        with ServerProcess(fresh_database_url, *args) as restarted:
            stub = session_pb2_grpc.SessionServiceStub(grpc.insecure_channel(restarted.target))
            for session_id, texts in acknowledged.items():
                stored = _stored(stub, session_id)
                users = [m.message.content for m in stored[::2]]
                assert users[: len(texts)] == texts, f"{session_id}: lost acknowledged turns"
                assert len(users) <= len(texts) + 1, "at most the unanswered call, whole"
                assert len(stored) % 2 == 0, f"{session_id}: a half turn"
                assert [m.sequence for m in stored] == list(range(1, len(stored) + 1))
                for question, answer in zip(stored[::2], stored[1::2], strict=True):
                    assert answer.message.content == f"echo: {question.message.content}"


def _stored(
    stub: session_pb2_grpc.SessionServiceStub, session_id: str
) -> list[session_pb2.Message]:
    try:
        page = stub.ListMessages(
            session_pb2.ListMessagesRequest(session_id=session_id, page_size=1000), timeout=10
        )
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return []  # its first call never finished
        raise
    return list(page.messages)
