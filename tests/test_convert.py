"""Conversions from storage records to memori.v1 messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from google.protobuf import timestamp_pb2
from hypothesis import given
from hypothesis import strategies as st
from memori_server.domain import Attribution
from memori_server.services.chat_service import SESSION_BYTES_BOUND
from memori_server.services.convert import session_pb, timestamp
from memori_server.storage.records import SessionRecord
from memori_server.storage.tables import NAME_LENGTH

ZONES = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), ZONES)
def test_a_timestamp_is_what_protobuf_makes_of_the_datetime(
    moment: datetime, zone: timezone | None
) -> None:
    value = moment.replace(tzinfo=zone)
    expected = timestamp_pb2.Timestamp()
    expected.FromDatetime(value)  # naive reads as UTC
    assert timestamp(value) == expected


def test_the_largest_session_message_fits_the_bound_completions_reserve_for_it() -> None:
    """`Complete` checks its reply's size before the turn is stored, with room for the
    session it is stored in: no session message is larger than that room."""
    widest = "\U0001f600" * NAME_LENGTH  # four bytes each in UTF-8
    latest = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    record = SessionRecord(
        id="f" * 36,
        tenant_id="default",
        attribution=Attribution(widest, widest),
        create_time=latest,
        update_time=latest,
        message_count=2**63 - 1,
    )
    assert session_pb(record).ByteSize() <= SESSION_BYTES_BOUND
