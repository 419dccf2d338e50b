"""Conversions from storage records to memori.v1 messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from google.protobuf import timestamp_pb2
from hypothesis import given
from hypothesis import strategies as st
from memori_server.services.convert import timestamp

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
