"""SessionService over the wire: Reset, Set, Get, Delete on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid

import grpc
import pytest
from google.rpc import error_details_pb2
from memori_proto.v1 import common_pb2, session_pb2
from memori_proto.v1.session_pb2_grpc import SessionServiceStub

from tests.factories import attribution, new_id
from tests.rpc_errors import call_fails

pytestmark = pytest.mark.both_storage_paths  # storage fast paths on and off

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def reset(sessions: SessionServiceStub, who: common_pb2.Attribution) -> session_pb2.Session:
    return sessions.Reset(session_pb2.ResetRequest(attribution=who)).session


def current(sessions: SessionServiceStub, who: common_pb2.Attribution) -> session_pb2.Session:
    return sessions.Get(session_pb2.GetRequest(attribution=who)).session


def test_reset_creates_a_session_that_becomes_current(sessions: SessionServiceStub) -> None:
    who = attribution()
    session = reset(sessions, who)
    assert UUID4.match(session.id)
    assert session.attribution == who
    assert session.message_count == 0
    assert session.create_time.ToDatetime() == session.update_time.ToDatetime()
    assert sessions.Get(session_pb2.GetRequest(session_id=session.id)).session == session
    assert current(sessions, who) == session


def test_reset_again_starts_a_fresh_session(sessions: SessionServiceStub) -> None:
    who = attribution()
    first = reset(sessions, who)
    second = reset(sessions, who)
    assert first.id != second.id
    assert current(sessions, who).id == second.id
    # The old session still exists and can be resumed.
    assert sessions.Get(session_pb2.GetRequest(session_id=first.id)).session.id == first.id


def test_attributions_have_independent_current_sessions(sessions: SessionServiceStub) -> None:
    alice, bob = attribution(), attribution()
    alice_other_agent = common_pb2.Attribution(entity_id=alice.entity_id, process_id="other")
    sessions_by_owner = {
        "alice": reset(sessions, alice),
        "bob": reset(sessions, bob),
        "alice-other": reset(sessions, alice_other_agent),
    }
    assert current(sessions, alice).id == sessions_by_owner["alice"].id
    assert current(sessions, bob).id == sessions_by_owner["bob"].id
    assert current(sessions, alice_other_agent).id == sessions_by_owner["alice-other"].id


def test_empty_process_id_is_an_attribution_of_its_own(sessions: SessionServiceStub) -> None:
    who = attribution(process_id="")
    session = reset(sessions, who)
    assert current(sessions, who).id == session.id
    with_process = common_pb2.Attribution(entity_id=who.entity_id, process_id="agent")
    call_fails(lambda: current(sessions, with_process), grpc.StatusCode.NOT_FOUND)


@pytest.mark.parametrize(
    ("who", "field"),
    [
        (None, "attribution"),
        (common_pb2.Attribution(entity_id="", process_id="p"), "attribution.entity_id"),
        (common_pb2.Attribution(entity_id="e" * 101), "attribution.entity_id"),
        (common_pb2.Attribution(entity_id="e", process_id="p" * 101), "attribution.process_id"),
        (common_pb2.Attribution(entity_id="bad\x00id"), "attribution.entity_id"),
    ],
)
def test_reset_rejects_bad_attribution(
    sessions: SessionServiceStub, who: common_pb2.Attribution | None, field: str
) -> None:
    request = session_pb2.ResetRequest(attribution=who) if who else session_pb2.ResetRequest()
    failed = call_fails(lambda: sessions.Reset(request), INVALID)
    assert field in failed.field_violations
    assert failed.reason == "INVALID_ARGUMENT"


def test_attribution_ids_of_exactly_100_characters_are_accepted(
    sessions: SessionServiceStub,
) -> None:
    who = common_pb2.Attribution(entity_id="é" * 99 + uuid.uuid4().hex[:1], process_id="p" * 100)
    assert reset(sessions, who).attribution == who


def test_set_unknown_id_creates_and_selects_it(sessions: SessionServiceStub) -> None:
    who, session_id = attribution(), new_id()
    response = sessions.Set(session_pb2.SetRequest(attribution=who, session_id=session_id))
    assert response.created
    assert response.session.id == session_id
    assert response.session.attribution == who
    assert current(sessions, who).id == session_id


def test_set_resumes_an_earlier_session(sessions: SessionServiceStub) -> None:
    who = attribution()
    first = reset(sessions, who)
    reset(sessions, who)
    response = sessions.Set(session_pb2.SetRequest(attribution=who, session_id=first.id))
    assert not response.created
    assert response.session.id == first.id
    assert response.session.create_time == first.create_time
    assert response.session.update_time.ToDatetime() >= first.update_time.ToDatetime()
    assert current(sessions, who).id == first.id


def test_set_normalises_upper_case_ids(sessions: SessionServiceStub) -> None:
    who, session_id = attribution(), new_id()
    response = sessions.Set(session_pb2.SetRequest(attribution=who, session_id=session_id.upper()))
    assert response.session.id == session_id
    assert sessions.Get(session_pb2.GetRequest(session_id=session_id.upper())).session.id == (
        session_id
    )


@pytest.mark.parametrize(
    "bad_id",
    [
        "",
        "not-a-uuid",
        str(uuid.uuid1()),  # a UUID, but version 1
        uuid.uuid4().hex,  # no hyphens
        "{" + str(uuid.uuid4()) + "}",
        str(uuid.uuid4()) + " ",
        "x" * 10_000,
    ],
)
def test_set_rejects_ids_that_are_not_uuid4(sessions: SessionServiceStub, bad_id: str) -> None:
    request = session_pb2.SetRequest(attribution=attribution(), session_id=bad_id)
    failed = call_fails(lambda: sessions.Set(request), INVALID)
    assert "session_id" in failed.field_violations
    assert len(failed.message) < 500  # a huge input is not echoed back whole


def test_set_reports_every_violation_at_once(sessions: SessionServiceStub) -> None:
    request = session_pb2.SetRequest(
        attribution=common_pb2.Attribution(entity_id=""), session_id="nope"
    )
    failed = call_fails(lambda: sessions.Set(request), INVALID)
    assert set(failed.field_violations) == {"attribution.entity_id", "session_id"}


def test_set_on_another_attributions_session_is_failed_precondition(
    sessions: SessionServiceStub,
) -> None:
    owner, intruder = attribution(), attribution()
    owned = reset(sessions, owner)
    intruder_session = reset(sessions, intruder)
    failed = call_fails(
        lambda: sessions.Set(session_pb2.SetRequest(attribution=intruder, session_id=owned.id)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert failed.reason == "SESSION_ATTRIBUTION_MISMATCH"
    violation = failed.detail(error_details_pb2.PreconditionFailure).violations[0]
    assert violation.subject.endswith(owned.id)
    # Nothing changed for either side.
    assert current(sessions, intruder).id == intruder_session.id
    assert sessions.Get(session_pb2.GetRequest(session_id=owned.id)).session.attribution == owner


def test_get_unknown_session_is_not_found_with_resource_info(
    sessions: SessionServiceStub,
) -> None:
    missing = new_id()
    failed = call_fails(
        lambda: sessions.Get(session_pb2.GetRequest(session_id=missing)),
        grpc.StatusCode.NOT_FOUND,
    )
    info = failed.detail(error_details_pb2.ResourceInfo)
    assert info.resource_type == "memori.v1.Session"
    assert info.resource_name == missing
    assert failed.reason == "SESSION_NOT_FOUND"


def test_get_checks_ownership_when_attribution_is_given(sessions: SessionServiceStub) -> None:
    owner = attribution()
    session = reset(sessions, owner)
    assert sessions.Get(session_pb2.GetRequest(session_id=session.id, attribution=owner))
    call_fails(
        lambda: sessions.Get(
            session_pb2.GetRequest(session_id=session.id, attribution=attribution())
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )


def test_get_needs_an_id_or_an_attribution(sessions: SessionServiceStub) -> None:
    failed = call_fails(lambda: sessions.Get(session_pb2.GetRequest()), INVALID)
    assert "session_id" in failed.field_violations
    failed = call_fails(lambda: sessions.Get(session_pb2.GetRequest(session_id="123")), INVALID)
    assert "session_id" in failed.field_violations


def test_get_current_without_any_session_is_not_found(sessions: SessionServiceStub) -> None:
    failed = call_fails(lambda: current(sessions, attribution()), grpc.StatusCode.NOT_FOUND)
    assert failed.reason == "NO_CURRENT_SESSION"
    assert "Reset" in failed.message


def test_delete_removes_the_session_and_its_current_pointer(
    sessions: SessionServiceStub,
) -> None:
    who = attribution()
    session = reset(sessions, who)
    response = sessions.Delete(session_pb2.DeleteRequest(session_id=session.id, attribution=who))
    assert response.deleted_message_count == 0
    call_fails(
        lambda: sessions.Get(session_pb2.GetRequest(session_id=session.id)),
        grpc.StatusCode.NOT_FOUND,
    )
    call_fails(lambda: current(sessions, who), grpc.StatusCode.NOT_FOUND)
    call_fails(
        lambda: sessions.Delete(session_pb2.DeleteRequest(session_id=session.id)),
        grpc.StatusCode.NOT_FOUND,
    )


def test_delete_of_another_attributions_session_is_refused(
    sessions: SessionServiceStub,
) -> None:
    owner = attribution()
    session = reset(sessions, owner)
    call_fails(
        lambda: sessions.Delete(
            session_pb2.DeleteRequest(session_id=session.id, attribution=attribution())
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert current(sessions, owner).id == session.id


def test_a_deleted_id_can_be_set_again_as_a_new_session(sessions: SessionServiceStub) -> None:
    who = attribution()
    session = reset(sessions, who)
    sessions.Delete(session_pb2.DeleteRequest(session_id=session.id))
    response = sessions.Set(session_pb2.SetRequest(attribution=who, session_id=session.id))
    assert response.created
    assert response.session.message_count == 0


def test_delete_rejects_a_bad_id(sessions: SessionServiceStub) -> None:
    failed = call_fails(
        lambda: sessions.Delete(session_pb2.DeleteRequest(session_id="abc")), INVALID
    )
    assert "session_id" in failed.field_violations
