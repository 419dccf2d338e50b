"""SessionService from Python with the generated stubs: the life of one conversation.

    MEMORI_TARGET=localhost:50051 .venv/bin/python examples/session_lifecycle.py

Starts a session for a user and agent, finds it again the two ways an app resumes
(by the attribution's current session, and by a saved id), lists recent sessions,
and deletes it. Prints each step; exits non-zero if the service disagrees.
"""

from __future__ import annotations

import os
import sys

import grpc
from google.protobuf import duration_pb2
from grpc_status import rpc_status
from memori_proto.v1 import common_pb2, session_pb2, session_pb2_grpc


def main() -> int:
    target = os.environ.get("MEMORI_TARGET", "localhost:50051")
    who = common_pb2.Attribution(entity_id="user-123", process_id="lifecycle-example")
    with grpc.insecure_channel(target) as channel:
        sessions = session_pb2_grpc.SessionServiceStub(channel)

        started = sessions.Reset(session_pb2.ResetRequest(attribution=who)).session
        print(f"new session {started.id}")

        # An app that keeps no state asks for the attribution's current session...
        current = sessions.Get(session_pb2.GetRequest(attribution=who)).session
        print(f"current session {current.id}")

        # ...one that saved the id resumes it explicitly.
        resumed = sessions.Set(session_pb2.SetRequest(attribution=who, session_id=started.id))
        print(f"resumed {resumed.session.id} (created: {resumed.created})")

        day = duration_pb2.Duration(seconds=86400)
        recent = sessions.List(session_pb2.ListRequest(attribution=who, active_within=day))
        print(f"{len(recent.sessions)} session(s) active in the last 24 h")

        history = sessions.ListMessages(
            session_pb2.ListMessagesRequest(session_id=started.id, attribution=who)
        )
        print(f"{len(history.messages)} stored message(s)")  # chat turns land here

        sessions.Delete(session_pb2.DeleteRequest(session_id=started.id, attribution=who))
        try:
            sessions.Get(session_pb2.GetRequest(session_id=started.id))
        except grpc.RpcError as error:
            if not isinstance(error, grpc.Call):  # a failed unary call is always both
                raise
            status = rpc_status.from_call(error)  # google.rpc.Status with the rich details
            print(f"after Delete: {error.code().name} ({status.message if status else ''})")
        else:
            print("the deleted session is still there", file=sys.stderr)
            return 1
        ok = current.id == started.id == resumed.session.id and not resumed.created
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
