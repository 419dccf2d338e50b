"""The service's own vocabulary, shared by every layer and dependent on none of them:
who owns a session, and the chat roles (named after the contract's Role enum, once)."""

from __future__ import annotations

from dataclasses import dataclass

from memori_proto.v1 import common_pb2


@dataclass(frozen=True, slots=True)
class Attribution:
    """The owner of a session: end user (entity) and agent/app (process)."""

    entity_id: str
    process_id: str


# ROLE_USER -> "user", ...: the OpenAI role names are the enum's names without the prefix.
ROLE_NAMES: dict[common_pb2.Role.ValueType, str] = {
    number: name.removeprefix("ROLE_").lower()
    for name, number in common_pb2.Role.items()
    if number != common_pb2.ROLE_UNSPECIFIED
}
ROLE_VALUES: dict[str, common_pb2.Role.ValueType] = {
    name: number for number, name in ROLE_NAMES.items()
}
INSTRUCTION_ROLES = frozenset({"system", "developer"})
