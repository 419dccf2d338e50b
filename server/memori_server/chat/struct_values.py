"""protobuf Struct/Value fields (tools, tool_choice, response_format, content parts) as JSON.

protobuf keeps every number as a double; JSON callers mean integers where they wrote them, so
whole numbers come back as ints. A Struct can also hold NaN and infinities, which JSON cannot:
those are the caller's error, reported on the field.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import struct_pb2

_EXACT_INT = 2**53


class NotJson(ValueError):
    """The value holds a number JSON cannot carry (NaN or an infinity)."""


def value_json(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            raise NotJson("holds NaN or an infinity, which JSON cannot carry")
        return int(number) if number.is_integer() and abs(number) < _EXACT_INT else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_json(value.struct_value)
    if kind == "list_value":
        return [value_json(item) for item in value.list_value.values]
    return None  # null_value, or unset


def struct_json(struct: struct_pb2.Struct) -> dict[str, Any]:
    return {key: value_json(item) for key, item in struct.fields.items()}
