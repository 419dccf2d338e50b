"""Stateless servers: several `memori-server` processes on one database act as one service."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
from memori_proto.v1 import session_pb2
from memori_proto.v1.session_pb2_grpc import SessionServiceStub

from tests.factories import attribution
from tests.server_process import ServerProcess


def test_two_processes_share_sessions_and_current_pointers(database_url: str) -> None:
    with (
        ServerProcess(database_url) as first,
        ServerProcess(database_url) as second,
        grpc.insecure_channel(first.target) as a,
        grpc.insecure_channel(second.target) as b,
    ):
        stub_a, stub_b = SessionServiceStub(a), SessionServiceStub(b)
        who = attribution()
        created = stub_a.Reset(session_pb2.ResetRequest(attribution=who)).session
        current = stub_b.Get(session_pb2.GetRequest(attribution=who)).session
        assert current.id == created.id
        newer = stub_b.Reset(session_pb2.ResetRequest(attribution=who)).session
        assert stub_a.Get(session_pb2.GetRequest(attribution=who)).session.id == newer.id

        # Writers on both processes at once: nothing lost.
        def reset(stub: SessionServiceStub) -> str:
            return stub.Reset(session_pb2.ResetRequest(attribution=who)).session.id

        with ThreadPoolExecutor(8) as pool:
            ids = set(pool.map(reset, [stub_a, stub_b] * 20))
        assert len(ids) == 40
        listed = stub_b.List(session_pb2.ListRequest(attribution=who, page_size=100))
        assert ids | {created.id, newer.id} == {s.id for s in listed.sessions}
        # The current session is one of the last writes, and both processes agree on it.
        current_a = stub_a.Get(session_pb2.GetRequest(attribution=who)).session.id
        assert current_a == stub_b.Get(session_pb2.GetRequest(attribution=who)).session.id
        assert current_a in ids
