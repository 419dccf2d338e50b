"""Checks on client input, reported as field violations naming the request field."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2

from memori_server.domain import Attribution
from memori_server.errors import InvalidArgument

MAX_ATTRIBUTION_ID_CHARS = 100  # the Memori SDK's own limit on entity and process ids
MAX_PAGE_SIZE = 1000
MAX_REQUEST_ID_CHARS = 128
# A client's clock may run this far ahead of the server's before its "now" is the future.
CLOCK_SKEW = timedelta(seconds=60)
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
_UUID4 = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.IGNORECASE
)
# C0 controls and DEL (a pattern: a generator over the characters cost microseconds a call).
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_SPACE_OR_CONTROL = re.compile("[\x00-\x20\x7f]")


class Violations:
    """Collects every problem of a request, so one error lists them all."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, field: str, description: str) -> None:
        self.items.append((field, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


def session_id(value: str, field: str, violations: Violations) -> str:
    """A UUID v4 in canonical hyphenated form; returned in lower case."""
    if not value:
        violations.add(field, "required: a UUID v4 such as 6f1c2d3e-4b5a-4c6d-8e7f-8091a2b3c4d5")
    elif not _UUID4.match(value):
        shown = value if len(value) <= 64 else f"{value[:64]}..."
        violations.add(
            field,
            f"{shown!r} is not a UUID v4 in canonical form "
            "(xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx, y one of 8, 9, a, b)",
        )
    return value.lower()


def entity_id(value: str, field: str, violations: Violations) -> str:
    """A required entity id (the end user), as attributions carry it."""
    _attribution_id(value, field, True, violations)
    return value


def _attribution_id(value: str, field: str, required: bool, violations: Violations) -> None:
    if required and not value:
        violations.add(field, "required: the end user's id, e.g. 'user-123'")
    elif len(value) > MAX_ATTRIBUTION_ID_CHARS:
        violations.add(field, f"{len(value)} characters; at most {MAX_ATTRIBUTION_ID_CHARS}")
    elif _CONTROL.search(value):
        violations.add(field, "contains control characters")


def attribution(entity_id: str, process_id: str, field: str, violations: Violations) -> Attribution:
    _attribution_id(entity_id, f"{field}.entity_id", True, violations)
    _attribution_id(process_id, f"{field}.process_id", False, violations)
    return Attribution(entity_id=entity_id, process_id=process_id)


def page_size(value: int, default: int, field: str, violations: Violations) -> int:
    """AIP-158: 0 means the default, larger than the maximum is coerced, negative is an error."""
    if value < 0:
        violations.add(field, f"{value} is negative; use 0 for the default of {default}")
        return default
    if value == 0:
        return default
    return min(value, MAX_PAGE_SIZE)


def update_time_floor(
    min_update_time: timestamp_pb2.Timestamp | None,
    active_within: duration_pb2.Duration | None,
    violations: Violations,
) -> datetime | None:
    """The earliest `update_time` a List call admits (the later of both filters), if any."""
    floors: list[datetime] = []
    if min_update_time is not None:
        try:
            floors.append(min_update_time.ToDatetime(tzinfo=UTC))
        except (ValueError, OverflowError) as error:
            violations.add("min_update_time", f"not a valid timestamp: {error}")
    if active_within is not None:
        try:
            window = active_within.ToTimedelta()
        except (ValueError, OverflowError) as error:
            violations.add("active_within", f"not a valid duration: {error}")
        else:
            now = datetime.now(UTC)
            if window <= timedelta(0):
                violations.add("active_within", "must be a positive duration, e.g. 86400s")
            elif window < now - datetime.min.replace(tzinfo=UTC):
                floors.append(now - window)  # a longer window admits everything
    return max(floors) if floors else None


def turn_target(request: Any, violations: Violations) -> tuple[Attribution, str | None, str | None]:
    """What a call that stores a turn names (a completion, an append): its attribution
    (required), the optional session id and the optional request id."""
    if request.HasField("attribution"):
        owner = attribution(
            request.attribution.entity_id, request.attribution.process_id, "attribution", violations
        )
    else:
        violations.add("attribution", "required: {entity_id, process_id}")
        owner = Attribution("", "")
    session = (
        session_id(request.session_id, "session_id", violations) if request.session_id else None
    )
    return owner, session, request_id(request.request_id, "request_id", violations)


def request_id(value: str, field: str, violations: Violations) -> str | None:
    """An optional idempotency key: at most 128 printable characters without spaces."""
    if not value:
        return None
    if len(value) > MAX_REQUEST_ID_CHARS:
        violations.add(field, f"at most {MAX_REQUEST_ID_CHARS} characters")
    elif _SPACE_OR_CONTROL.search(value):
        violations.add(field, "must not contain spaces or control characters")
    return value


def past_time(
    stamp: timestamp_pb2.Timestamp, field: str, now: datetime, violations: Violations
) -> datetime | None:
    """A valid timestamp from 1970 up to `now`; one up to a minute ahead (clock skew) is
    taken as `now`."""
    try:
        value = stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as error:
        violations.add(field, f"not a valid timestamp: {error}")
        return None
    if value > now + CLOCK_SKEW:
        violations.add(
            field,
            f"{value.isoformat()} is in the future (the server's time is {now.isoformat()}); "
            "give when the messages were written, or leave it unset for now",
        )
        return None
    if value < EARLIEST_TIME:
        violations.add(field, f"{value.isoformat()} is before 1970-01-01T00:00:00Z")
        return None
    return min(value, now)  # within the skew: now
