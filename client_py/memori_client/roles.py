"""The chat roles of the contract: OpenAI's names, derived once from the Role enum."""

from __future__ import annotations

from memori_proto.v1 import common_pb2

# ROLE_USER -> "user", ...
ROLE_NAMES: dict[common_pb2.Role.ValueType, str] = {
    number: name.removeprefix("ROLE_").lower()
    for name, number in common_pb2.Role.items()
    if number != common_pb2.ROLE_UNSPECIFIED
}
ROLES: dict[str, common_pb2.Role.ValueType] = {name: number for number, name in ROLE_NAMES.items()}
