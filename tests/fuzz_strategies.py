"""Hypothesis strategies for fuzzing every memori.v1 RPC and grpc.health.v1 Health/Check.

Shared by the test suite's bounded slice (tests/test_fuzz_rpcs.py) and the 10,000-case run
(`./dev bench --only fuzz`, bench/fuzz.py); tests/fuzz_cases.py sends what these build.
Nothing here talks to a server. Four kinds of input:

- structured requests: `messages_of` builds any message from its descriptor (every field
  of every type, well-known types included), with `overrides` for the fields whose
  interesting values are specific (session ids, page tokens, extra_json, roles, content
  parts, ...); `valid_requests` builds requests that pass validation, and `near_valid`
  breaks one or two fields of those, so the fuzz reaches storage and the upstream too;
- raw bytes (`raw_requests`): serialized requests truncated, bit-flipped, spliced, or with
  invalid UTF-8, wrong wire types, huge lengths, unknown fields or deep nesting added;
- page tokens (`page_tokens`): tokens a server issued, mutated as text or decoded,
  forged with missing, extra, wrongly typed and out-of-range fields, and encoded again;
- upstream replies (`upstream_replies`): stand-in `raw` behaviours whose bodies are odd
  completions or SSE streams (out-of-range numbers, NaN, lone surrogate escapes, NULs,
  non-object entries where objects belong, missing finish reasons, ...).
"""

from __future__ import annotations

import base64
import json
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta, timezone
from functools import cache
from typing import Any, TypeVar, cast

from google.protobuf import duration_pb2, message_factory, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st
from memori_proto.v1 import chat_pb2, common_pb2, session_pb2

from standin_upstream import Behaviour

M = TypeVar("M", bound=Message)
Strategy = st.SearchStrategy
Overrides = Mapping[str, Strategy[Any]]
MODEL = "gpt-4o-mini"
MAX_DEPTH = 4  # message nesting the generic builder descends into

# -- text ----------------------------------------------------------------------------------

ODD_STRINGS = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x00\x00\x00",
    "\t\r\n",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\u200b",
    "\u202e",
    "\ufeff",
    "\ufffd",
    "\uffff",
    "\U0010ffff",
    "\U0001f600",
    "e\u0301\u0301\u0301",
    "\u0130",
    "\ufb03",
    "\U0001d552",
    "' OR '1'='1",
    "%s%n%x",
    "{}",
    "[]",
    "null",
    "NaN",
    "-0",
    "1e999",
    "\\ud800",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "6F1C2D3E-4B5A-4C6D-8E7F-8091A2B3C4D5",
)
# Unicode that trips up naive handling; no surrogates (Cs), which no proto string can hold.
ODD_CATEGORIES: tuple[Any, ...] = ("Cc", "Cf", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me")
HUGE_LENGTHS = (101, 257, 4_097, 70_001)
GIANT_LENGTH = 1_100_000  # over 1 MB; four times that in UTF-8 passes the 4 MiB message limit


@cache
def huge_texts(lengths: tuple[int, ...] = HUGE_LENGTHS) -> Strategy[str]:
    """Long runs of one to a few characters, cheap to generate at any length. No spaces:
    the stand-in streams its echo a word per chunk, and 70,000 chunks take 20 s."""
    return st.builds(
        operator.mul,
        st.sampled_from(("x", "\u00e9", "\U0001f600", "\x00", "ab", "\u202e")),
        st.sampled_from(lengths),
    )


def rarely(rare: Strategy[Any], usual: Strategy[Any], one_in: int = 16) -> Strategy[Any]:
    """`rare` for about one draw in `one_in`, else `usual` (one_of would pick it half the time)."""
    return st.sampled_from(range(one_in)).flatmap(lambda pick: rare if pick == 0 else usual)


@cache
def texts(max_size: int = 24, huge: bool = True) -> Strategy[str]:
    """Any string a proto field can carry: plain, odd, control characters, huge (if `huge`)."""
    kinds = [
        st.text(max_size=max_size),
        st.sampled_from(ODD_STRINGS),
        st.text(st.characters(categories=ODD_CATEGORIES), min_size=1, max_size=max_size),
        st.text(st.characters(max_codepoint=0x7F), max_size=max_size),
    ]
    return st.one_of(*kinds, huge_texts()) if huge else st.one_of(kinds)


# -- scalars by field type --------------------------------------------------------------------

EDGE_INTS = (
    *(0, 1, -1, 2, 100, 1000, 1001, 2047, 2048, 2049, 86_400, 1_000_000),
    *(2**31 - 1, -(2**31), 2**31, 2**32 - 1, 2**53, 2**53 + 1),
    *(2**63 - 1, -(2**63), 2**64 - 1),
)
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
INT_RANGES: dict[int, tuple[int, int]] = {
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_SINT32: _INT32,
    FieldDescriptor.TYPE_SFIXED32: _INT32,
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
EDGE_FLOATS = (
    *(float("nan"), float("inf"), float("-inf"), -0.0, 5e-324, 1.7976931348623157e308),
    *(-1.0, 2.0, 1e-300, 0.5),
)


@cache
def ints(low: int, high: int) -> Strategy[int]:
    edges = sorted({value for value in EDGE_INTS if low <= value <= high} | {low, high})
    return st.one_of(st.integers(low, high), st.sampled_from(edges))


@cache
def floats() -> Strategy[float]:
    return st.one_of(st.floats(), st.sampled_from(EDGE_FLOATS))


@cache
def floats32() -> Strategy[float]:
    return st.one_of(st.floats(width=32), st.sampled_from((float("nan"), -0.0, 3.4e38)))


# -- well-known types -------------------------------------------------------------------------

TIMESTAMP_SECONDS = (
    *(-62_135_596_800, -62_135_596_801, 253_402_300_799, 253_402_300_800),
    *(0, -1, 1_700_000_000, 4_102_444_800),
)
DURATION_SECONDS = (0, 1, -1, 86_400, 315_576_000_000, 315_576_000_001, -315_576_000_001)
NANOS = (0, 1, -1, 999_999_999, 1_000_000_000, -999_999_999, -1_000_000_000)


@cache
def timestamps() -> Strategy[timestamp_pb2.Timestamp]:
    """Valid, boundary and out-of-range Timestamps (seconds and nanos both)."""
    return st.builds(
        lambda seconds, nanos: timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos),
        st.one_of(st.sampled_from(TIMESTAMP_SECONDS), ints(*_INT64)),
        st.one_of(st.sampled_from(NANOS), st.integers(0, 999_999_999), ints(*_INT32)),
    )


@cache
def durations() -> Strategy[duration_pb2.Duration]:
    """Valid, boundary, mixed-sign and out-of-range Durations."""
    return st.builds(
        lambda seconds, nanos: duration_pb2.Duration(seconds=seconds, nanos=nanos),
        st.one_of(st.sampled_from(DURATION_SECONDS), ints(*_INT64)),
        st.one_of(st.sampled_from(NANOS), ints(*_INT32)),
    )


@cache
def json_values(max_leaves: int = 10) -> Strategy[Any]:
    """What a google.protobuf.Value can hold (numbers are doubles, NaN and inf included)."""
    small = texts(16, huge=False)
    scalars = st.one_of(st.none(), st.booleans(), floats(), ints(-(2**60), 2**60), small)
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(small, children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


# Struct depths a client can still copy into a request (each level is three messages deep,
# and protobuf parses at most 100); deeper nesting is hand-encoded by `deep_nesting`.
NESTING = (10, 25, 30)


def nested(depth: int) -> dict[str, Any]:
    """{"a": {"a": ...}} `depth` levels deep."""
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def struct_of(values: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def value_of(value: Any) -> struct_pb2.Value:
    holder = struct_of({"v": value})
    return holder.fields["v"]


@cache
def structs(dicts: Strategy[dict[str, Any]] | None = None) -> Strategy[struct_pb2.Struct]:
    generic = st.one_of(
        st.dictionaries(texts(12), json_values(), max_size=5),
        st.sampled_from(NESTING).map(nested),
    )
    return (generic if dicts is None else st.one_of(generic, dicts)).map(struct_of)


@cache
def values(choices: Strategy[Any] | None = None) -> Strategy[struct_pb2.Value]:
    generic = st.one_of(json_values(), st.sampled_from(NESTING).map(nested))
    some = generic if choices is None else st.one_of(generic, choices)
    return st.one_of(some.map(value_of), st.just(struct_pb2.Value()))  # a Value of no kind


@cache
def list_values() -> Strategy[struct_pb2.ListValue]:
    return st.lists(json_values(), max_size=4).map(lambda items: value_of(items).list_value)


WELL_KNOWN: dict[str, Callable[[], Strategy[Any]]] = {
    "google.protobuf.Timestamp": timestamps,
    "google.protobuf.Duration": durations,
    "google.protobuf.Struct": structs,
    "google.protobuf.Value": values,
    "google.protobuf.ListValue": list_values,
}

# -- any message, from its descriptor ---------------------------------------------------------


def descriptor_of(cls: type[Message]) -> Descriptor:
    return cast(Descriptor, cls.DESCRIPTOR)


def _scalar(field: FieldDescriptor) -> Strategy[Any]:
    kind = field.type
    if kind in INT_RANGES:
        return ints(*INT_RANGES[kind])
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return floats()
    if kind == FieldDescriptor.TYPE_FLOAT:
        return floats32()
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_STRING:
        return texts()
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        known = [value.number for value in field.enum_type.values]
        return st.one_of(st.sampled_from(known), ints(*_INT32))  # proto3 enums are open
    raise TypeError(f"{field.full_name}: unsupported field type {kind}")


def field_values(field: FieldDescriptor, overrides: Overrides, depth: int = 0) -> Strategy[Any]:
    """Values for one field: a list for repeated fields; overrides by full or plain name."""
    override = overrides.get(field.full_name, overrides.get(field.name))
    if override is not None:
        return override
    if field.message_type is not None:
        maker = WELL_KNOWN.get(field.message_type.full_name)
        if maker is not None:
            single: Strategy[Any] = maker()
        elif depth >= MAX_DEPTH:
            single = st.just(message_factory.GetMessageClass(field.message_type)())
        else:
            single = _messages(field.message_type, overrides, depth + 1)
    else:
        single = _scalar(field)
    return st.lists(single, max_size=4) if field.is_repeated else single


def set_field(message: Message, field: FieldDescriptor, value: Any) -> None:
    """Set `field` of `message` to `value`; None clears it (unset)."""
    if value is None:
        message.ClearField(field.name)
    elif field.is_repeated:
        message.ClearField(field.name)
        getattr(message, field.name).extend(value)
    elif field.message_type is not None:
        getattr(message, field.name).CopyFrom(value)
    else:
        setattr(message, field.name, value)


def _build(descriptor: Descriptor, values: Mapping[str, Any]) -> Message:
    message = message_factory.GetMessageClass(descriptor)()
    for name, value in values.items():
        set_field(message, descriptor.fields_by_name[name], value)
    return message


def _messages(descriptor: Descriptor, overrides: Overrides, depth: int) -> Strategy[Message]:
    fields = {
        item.name: st.one_of(st.none(), field_values(item, overrides, depth))
        for item in descriptor.fields
    }
    return st.fixed_dictionaries(fields).map(lambda values: _build(descriptor, values))


def messages_of(cls: type[M], overrides: Overrides) -> Strategy[M]:
    """Any `cls`: every field unset or set to an adversarial value of its type."""
    return _messages(descriptor_of(cls), overrides, 0)  # type: ignore[return-value]


# -- targeted values ------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """An attribution and the sessions it owns on the server under test.

    `victims` are sessions of its own for Delete to take, so that the sessions every other
    RPC works on are never deleted (and then taken over by another attribution).
    """

    attribution: common_pb2.Attribution
    session_ids: tuple[str, ...]
    victims: tuple[str, ...] = ()


@dataclass(frozen=True)
class TokenSeed:
    """A page token the server issued, with the request it continues (page_size cleared)."""

    request: session_pb2.ListRequest | session_pb2.ListMessagesRequest
    token: str


@dataclass(frozen=True)
class Pool:
    """Real values taken from the server under test before fuzzing (see fuzz_cases.harvest)."""

    owners: tuple[Owner, ...]
    tokens: tuple[TokenSeed, ...]
    session_ids: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        ids = tuple(sid for owner in self.owners for sid in owner.session_ids)
        object.__setattr__(self, "session_ids", ids)

    def tokens_for(self, request_type: type[Message]) -> tuple[TokenSeed, ...]:
        return tuple(seed for seed in self.tokens if isinstance(seed.request, request_type))

    def for_deletes(self) -> Pool:
        """The same owners with their victims as their sessions."""
        owners = tuple(Owner(o.attribution, o.victims or o.session_ids) for o in self.owners)
        return Pool(owners, self.tokens)


@cache
def uuid4s() -> Strategy[str]:
    return st.uuids(version=4).map(str)


def session_ids(known: Sequence[str]) -> Strategy[str]:
    """Existing and new UUID v4s, and ids that are almost, or not at all, UUID v4s."""
    nearly = st.sampled_from(
        (
            "00000000-0000-0000-0000-000000000000",
            "6f1c2d3e-4b5a-1c6d-8e7f-8091a2b3c4d5",  # version 1
            "6f1c2d3e-4b5a-4c6d-cf7f-8091a2b3c4d5",  # wrong variant
            "6f1c2d3e4b5a4c6d8e7f8091a2b3c4d5",
            "{6f1c2d3e-4b5a-4c6d-8e7f-8091a2b3c4d5}",
            "urn:uuid:6f1c2d3e-4b5a-4c6d-8e7f-8091a2b3c4d5",
            "6f1c2d3e-4b5a-4c6d-8e7f-8091a2b3c4d5\n",
            "6f1c2d3e-4b5a-4c6d-8e7f-8091a2b3c4d5\x00",
            " 6f1c2d3e-4b5a-4c6d-8e7f-8091a2b3c4d5",
            "6f1c2d3e-4b5a-4c6d-8e7f-8091a2b3c4d\uff15",  # a fullwidth digit
        )
    )
    upper = uuid4s().map(str.upper)
    ids = [uuid4s(), upper, nearly, texts()]
    if known:
        ids[:0] = [st.sampled_from(known), st.sampled_from(known).map(str.upper)]
    return st.one_of(ids)


def attribution_ids(known: Sequence[str]) -> Strategy[str]:
    plain = st.from_regex(r"[a-z0-9_.@-]{1,20}", fullmatch=True)
    lengths = st.sampled_from(("u" * 100, "u" * 101, "\u00e9" * 100, "\U0001f600" * 100))
    return st.one_of(st.sampled_from(known), plain, lengths, texts()) if known else plain


ROLE_NUMBERS = tuple(value.number for value in common_pb2.Role.DESCRIPTOR.values)


@cache
def roles() -> Strategy[int]:
    return st.one_of(st.sampled_from(ROLE_NUMBERS), ints(*_INT32))


HOSTS = (
    "example.invalid",
    "localhost",
    "127.0.0.1",
    "169.254.169.254",
    "10.0.0.1",
    "[::1]",
    "[fe80::1]",
    "0x7f000001",
    "2130706433",
    "0",
)
URL_SCHEMES = ("https://", "http://", "file://", "ftp://", "javascript:", "gopher://", "")


@cache
def urls() -> Strategy[str]:
    """data:, https: and private, loopback, link-local and odd URLs; no real host names."""
    data_urls = st.one_of(
        st.sampled_from(
            ("data:image/png;base64,iVBORw0KGgo=", "data:,hello", "data:image/png;base64,!!!")
        ),
        st.just(70_000).map(lambda size: "data:image/png;base64," + "A" * size),
    )
    built = st.builds(
        lambda scheme, host, path: f"{scheme}{host}/{path}",
        st.sampled_from(URL_SCHEMES),
        st.sampled_from(HOSTS),
        st.one_of(st.just("latest/meta-data/"), texts(12)),
    )
    return st.one_of(data_urls, built, texts())


@cache
def content_part_dicts() -> Strategy[dict[str, Any]]:
    """OpenAI content parts, well-formed or not."""
    return st.one_of(
        st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(texts(), json_values())}),
        st.fixed_dictionaries(
            {"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": urls()})},
            optional={"detail": texts(8)},
        ),
        st.fixed_dictionaries(
            {"type": st.just("image_url"), "image_url": st.one_of(urls(), json_values())}
        ),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(("input_audio", "file", "refusal")),
                "input_audio": st.fixed_dictionaries(
                    {"data": texts(), "format": st.sampled_from(("wav", "mp3", "x"))}
                ),
                "file": st.fixed_dictionaries({}, optional={"file_data": texts(), "url": urls()}),
            }
        ),
        st.fixed_dictionaries({"type": st.one_of(texts(8), json_values(3))}),
        st.dictionaries(texts(8), json_values(), max_size=3),
    )


@cache
def content_parts() -> Strategy[list[struct_pb2.Struct]]:
    return st.lists(structs(content_part_dicts()), max_size=3)


@cache
def tool_structs() -> Strategy[struct_pb2.Struct]:
    function = st.fixed_dictionaries(
        {"name": st.one_of(st.just("lookup"), texts())},
        optional={"parameters": json_values(), "description": texts(), "strict": json_values(1)},
    )
    tool = st.fixed_dictionaries(
        {"type": st.one_of(st.just("function"), texts(8))}, optional={"function": function}
    )
    return structs(tool)


@cache
def tool_choices() -> Strategy[struct_pb2.Value]:
    named = st.fixed_dictionaries(
        {
            "type": st.just("function"),
            "function": st.fixed_dictionaries({"name": st.one_of(st.just("lookup"), texts())}),
        }
    )
    return values(st.one_of(st.sampled_from(("auto", "none", "required")), named))


@cache
def response_formats() -> Strategy[struct_pb2.Struct]:
    shaped = st.fixed_dictionaries(
        {"type": st.sampled_from(("text", "json_object", "json_schema", "xml"))},
        optional={
            "json_schema": st.fixed_dictionaries(
                {"name": texts(8), "schema": json_values()}, optional={"strict": st.booleans()}
            )
        },
    )
    return structs(shaped)


EXTRA_JSON_TEXTS = (
    "",
    "{}",
    "null",
    "[]",
    "0",
    '"text"',
    "{bad",
    '{"a":1,"a":2}',
    '{"logprobs": true, "top_logprobs": 2}',
    '{"stream": true}',
    '{"model": "other"}',
    '{"messages": []}',
    '{"n": 0}',
    '{"x": NaN}',
    '{"x": Infinity}',
    '{"x": 1e400}',
    '{"x": -1e400}',
    '{"x": 1' + "0" * 400 + "}",
    '{"metadata": {"k": "\\ud800"}}',
    '{"k": "\\udfff\\ud800"}',
    '{"k": "\\u0000"}',
    '{"api_base": "http://127.0.0.1:1/", "fallbacks": ["x"], "user_config": {}}',
    '{"extra_headers": {"Authorization": "Bearer x"}, "base_url": "http://10.0.0.1/"}',
    '{"stream_options": {"include_usage": true}}',
    '{"logit_bias": {"50256": -100}, "metadata": {"a": "b"}, "store": true}',
    "\ufeff{}",
    "{} {}",
)
OPENAI_PARAMETERS = (
    "logprobs",
    "top_logprobs",
    "metadata",
    "logit_bias",
    "frequency_penalty",
    "presence_penalty",
    "stream_options",
    "parallel_tool_calls",
    "store",
    "reasoning_effort",
    "modalities",
    "audio",
    "prediction",
    "service_tier",
    "web_search_options",
    "api_base",
    "extra_body",
)


def deep_json(depth: int, opener: str) -> str:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return opener * depth + "1" + closer * depth


@cache
def extra_json_texts() -> Strategy[str]:
    """Odd JSON and non-JSON for extra_json, OpenAI parameters with odd values included."""
    parameters = st.dictionaries(st.sampled_from(OPENAI_PARAMETERS), json_values(), max_size=3)
    return st.one_of(
        st.sampled_from(EXTRA_JSON_TEXTS),
        parameters.map(json.dumps),
        json_values().map(json.dumps),
        st.builds(
            deep_json, st.sampled_from((50, 1_000, 100_000)), st.sampled_from(("[", '{"a":'))
        ),
        texts(),
    )


@cache
def request_ids() -> Strategy[str]:
    odd = st.sampled_from(("a b", "r" * 128, "r" * 129, "\x7f", "\t", "\u00e9" * 128))
    return st.one_of(uuid4s(), odd, texts())


@cache
def page_sizes() -> Strategy[int]:
    return ints(*_INT32)


@cache
def health_services() -> Strategy[str]:
    names = ("", "memori.v1.SessionService", "memori.v1.ChatService", "grpc.health.v1.Health")
    return st.one_of(st.sampled_from(names), texts())


def overrides(pool: Pool) -> dict[str, Strategy[Any]]:
    """Field name -> values, for the fields where generic values are not interesting enough."""
    ids = tuple(
        value
        for owner in pool.owners
        for value in (owner.attribution.entity_id, owner.attribution.process_id)
    )
    known_tokens = tuple(seed.token for seed in pool.tokens)
    chosen: dict[str, Strategy[Any]] = {
        "session_id": session_ids(pool.session_ids),
        "entity_id": attribution_ids(ids),
        "process_id": attribution_ids(ids),
        "request_id": request_ids(),
        "model": st.one_of(st.just(MODEL), st.sampled_from(("m" * 256, "m" * 257)), texts()),
        "role": roles(),
        "content": rarely(huge_texts((GIANT_LENGTH,)), texts(80)),
        "content_parts": content_parts(),
        "tools": st.lists(tool_structs(), max_size=3),
        "tool_choice": tool_choices(),
        "response_format": response_formats(),
        "extra_json": extra_json_texts(),
        "page_size": page_sizes(),
        "page_token": st.one_of(
            st.sampled_from(known_tokens).flatmap(page_tokens) if known_tokens else texts(),
            texts(),
        ),
        "service": health_services(),
    }
    chat_message = messages_of(common_pb2.ChatMessage, chosen)
    chosen["messages"] = st.one_of(
        st.lists(chat_message, max_size=4), many_messages(), st.lists(chat_message, max_size=4)
    )
    return chosen


MANY = (0, 1, 2047, 2048, 2049, 5_000)


@cache
def many_messages() -> Strategy[list[common_pb2.ChatMessage]]:
    """Requests with up to thousands of messages (around the per-request cap)."""
    one = common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content="m")
    return st.sampled_from(MANY).map(lambda count: [one] * count)


# -- valid requests and near-valid ones -------------------------------------------------------


def user_message(text: str) -> common_pb2.ChatMessage:
    return common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content=text)


@cache
def chat_requests() -> Strategy[chat_pb2.ChatCompletionRequest]:
    """Valid chat requests (a model and user messages) whose text may be odd."""
    return st.builds(
        lambda texts_, temperature: chat_pb2.ChatCompletionRequest(
            model=MODEL, messages=[user_message(text) for text in texts_], temperature=temperature
        ),
        st.lists(texts(60), min_size=1, max_size=2),
        st.floats(0, 2),
    )


@st.composite
def valid_requests(draw: st.DrawFn, cls: type[M], pool: Pool) -> M:
    """A `cls` that passes validation, filled from `pool` by field name."""
    owner = draw(st.sampled_from(pool.owners))
    known = st.sampled_from(owner.session_ids)
    valid: dict[str, Strategy[Any]] = {
        "attribution": st.just(owner.attribution),
        "session_id": st.one_of(known, known, uuid4s()),
        "request": chat_requests(),
        "page_size": st.integers(0, 3),
    }
    request = cls()
    for item in descriptor_of(cls).fields:
        if item.name in valid:
            set_field(request, item, draw(valid[item.name]))
    return request


FieldPath = tuple[FieldDescriptor, ...]


@cache
def field_paths(
    descriptor: Descriptor, depth: int = 3, prefix: FieldPath = (), wire: bool = False
) -> list[FieldPath]:
    """Every field path of `descriptor` down to `depth`. Well-known types are leaves, except
    for `wire` paths (hand-encoded bytes), which go inside Struct and Value too."""
    paths: list[FieldPath] = []
    for item in descriptor.fields:
        path = (*prefix, item)
        paths.append(path)
        inner = item.message_type
        if inner is not None and depth > 1 and (wire or inner.full_name not in WELL_KNOWN):
            paths.extend(field_paths(inner, depth - 1, path, wire))
    return paths


def set_path(message: Message, path: Sequence[FieldDescriptor], value: Any) -> None:
    """Set the field at `path`, creating the messages on the way (element 0 of lists)."""
    holder = message
    for step in path[:-1]:
        if step.is_repeated:
            items = getattr(holder, step.name)
            holder = items[0] if len(items) else items.add()
        else:
            holder = getattr(holder, step.name)
    set_field(holder, path[-1], value)


@st.composite
def near_valid(draw: st.DrawFn, cls: type[M], pool: Pool, chosen: Overrides) -> M:
    """A valid `cls` with one or two fields (at any depth) set to adversarial values."""
    request = draw(valid_requests(cls, pool))
    paths = field_paths(descriptor_of(cls))
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(paths))
        set_path(request, path, draw(st.one_of(st.none(), field_values(path[-1], chosen))))
    return request


def requests_for(cls: type[M], pool: Pool, chosen: Overrides) -> Strategy[M]:
    """Wild, valid and near-valid requests of `cls`, near-valid ones most often."""
    near = near_valid(cls, pool, chosen)
    return st.one_of(messages_of(cls, chosen), valid_requests(cls, pool), near, near)


# -- raw bytes ----------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers as protobuf writes them: ten bytes
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def delimited(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


def nest(path: Sequence[int], innermost: bytes) -> bytes:
    """`innermost` (an encoded field of the last message on `path`) wrapped in its parents."""
    data = innermost
    for number in reversed(path):
        data = delimited(number, data)
    return data


def wire_paths(descriptor: Descriptor) -> list[FieldPath]:
    return field_paths(descriptor, 5, (), wire=True)


INVALID_UTF8 = (
    b"\xff",
    b"\xc0\x80",  # overlong NUL
    b"\xed\xa0\x80",  # an encoded surrogate
    b"\xf4\x90\x80\x80",  # past U+10FFFF
    b"\xe2\x82",  # cut short
    b"ok\x80",
    b"\xfe\xfe\xff\xff",
)


def _numbers(path: Sequence[FieldDescriptor]) -> list[int]:
    return [item.number for item in path]


@st.composite
def invalid_utf8_fields(draw: st.DrawFn, descriptor: Descriptor) -> bytes:
    """A string field somewhere in the message whose bytes are not UTF-8."""
    strings = [p for p in wire_paths(descriptor) if p[-1].type == FieldDescriptor.TYPE_STRING]
    path = _numbers(draw(st.sampled_from(strings)))
    return nest(path[:-1], delimited(path[-1], draw(st.sampled_from(INVALID_UTF8))))


@st.composite
def wrong_wire_types(draw: st.DrawFn, descriptor: Descriptor) -> bytes:
    """A field encoded with another wire type, a group marker or an invalid wire type."""
    path = _numbers(draw(st.sampled_from(wire_paths(descriptor))))
    wire_type = draw(st.integers(0, 7))
    payload = {
        0: varint(draw(ints(*_INT64))),
        1: draw(st.binary(min_size=8, max_size=8)),
        2: varint(3) + b"abc",
        5: draw(st.binary(min_size=4, max_size=4)),
    }.get(wire_type, draw(st.binary(max_size=4)))
    return nest(path[:-1], tag(path[-1], wire_type) + payload)


@st.composite
def huge_lengths(draw: st.DrawFn, descriptor: Descriptor) -> bytes:
    """A length prefix far beyond the bytes that follow (or beyond 64 bits)."""
    path = _numbers(draw(st.sampled_from(wire_paths(descriptor))))
    length = draw(st.sampled_from((2**31, 2**62, 2**64 - 1)))
    inner = tag(path[-1], 2) + varint(length) + b"x"
    return nest(path[:-1], inner) if draw(st.booleans()) else inner + b"\xff" * 11


@st.composite
def unknown_fields(draw: st.DrawFn) -> bytes:
    number = draw(st.sampled_from((15, 99, 536_870_911, 19_000)))  # 19000-19999: reserved
    payload = draw(st.sampled_from((varint(1), b"\x00" * 8, varint(2) + b"hi", b"\x00" * 4)))
    wire_type = {1: 0, 8: 1, 3: 2, 4: 5}[len(payload)]
    return tag(number, wire_type) + payload


@cache
def deep_struct(depth: int) -> bytes:
    """Struct{fields: {"a": Value{struct_value: Struct{...}}}} `depth` levels, hand-encoded."""
    data = b""
    for _ in range(depth):
        value = delimited(5, data)  # Value.struct_value
        entry = delimited(1, b"a") + delimited(2, value)  # map entry: key, value
        data = delimited(1, entry)  # Struct.fields
    return data


@st.composite
def deep_nesting(draw: st.DrawFn, descriptor: Descriptor) -> bytes:
    """A Struct field nested past protobuf's recursion limit (or just below it)."""
    structs_ = [
        p
        for p in field_paths(descriptor)
        if p[-1].message_type is not None
        and p[-1].message_type.full_name == "google.protobuf.Struct"
    ]
    if not structs_:
        return b""
    path = _numbers(draw(st.sampled_from(structs_)))
    depth = draw(st.sampled_from((20, 90, 101, 200, 5_000)))
    return nest(path, deep_struct(depth))


@st.composite
def _truncated(draw: st.DrawFn, valid: Strategy[bytes]) -> bytes:
    data = draw(valid)
    return data[: draw(st.integers(0, max(len(data) - 1, 0)))]


@st.composite
def _flipped(draw: st.DrawFn, valid: Strategy[bytes]) -> bytes:
    data = bytearray(draw(valid)) or bytearray(b"\x08")
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


@st.composite
def _spliced(draw: st.DrawFn, valid: Strategy[bytes]) -> bytes:
    data = draw(valid)
    at = draw(st.integers(0, len(data)))
    return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]


def raw_requests(valid: Strategy[bytes], descriptor: Descriptor) -> Strategy[bytes]:
    """Bytes for a method taking `descriptor`: random, or `valid` requests damaged or extended.

    Appending an encoded field to a serialized message is valid protobuf (fields merge),
    so the additions reach the parser inside an otherwise fine request.
    """
    additions = st.one_of(
        invalid_utf8_fields(descriptor),
        wrong_wire_types(descriptor),
        huge_lengths(descriptor),
        unknown_fields(),
        deep_nesting(descriptor),
    )
    return st.one_of(
        st.binary(max_size=64),
        valid,
        _truncated(valid),
        _flipped(valid),
        _spliced(valid),
        st.builds(operator.add, valid, additions),
        st.builds(operator.add, valid, additions),
    )


# -- page tokens --------------------------------------------------------------------------------


def encode_token(payload: Any) -> str:
    """What page_tokens.encode writes: unpadded base64url of JSON (NaN allowed here)."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        return None


ODD_NUMBERS: tuple[Any, ...] = (
    *(10**20, -(10**20), 2**63, 2**63 - 1, -(2**63) - 1, 2**64, -1, 0, 1),
    *(1.5, 1e308, -1e308, float("nan"), float("inf"), True, False, None, "1", [], {}),
)
ODD_TIMES: tuple[Any, ...] = (
    "9999-12-31T23:59:59.999999+00:00",
    "9999-12-31T23:59:59.999999",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+00:00",
    "0001-01-01T00:00:00",
    "0001-01-01T00:00:00+14:00",
    "2024-02-30T00:00:00+00:00",
    "2024-01-01",
    "2024-01-01T00:00:00Z",
    "2024-01-01T00:00:00.123456789+00:00",
    "2024-01-01T25:00:00+00:00",
    "+10000-01-01T00:00:00",
    "",
    "now",
    0,
    1e30,
    None,
    [],
    {},
)
ODD_IDS: tuple[Any, ...] = (
    "",
    "6f1c2d3e-4b5a-4c6d-8e7f-8091a2b3c4d5",
    "\x00",
    "x" * 1_000,
    5,
    None,
    [],
    {"a": 1},
    "\ud800",
)
ZONES = (None, UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=23, minutes=59)))
POSITION_VALUES: dict[str, Strategy[Any]] = {
    "s": st.one_of(st.sampled_from(ODD_NUMBERS), st.integers()),
    "t": st.one_of(
        st.sampled_from(ODD_TIMES),
        st.datetimes(timezones=st.sampled_from(ZONES)).map(lambda moment: moment.isoformat()),
        texts(),
    ),
    "i": st.one_of(st.sampled_from(ODD_IDS), uuid4s(), texts()),
}
POSITION_VALUES["c"] = POSITION_VALUES["t"]
TOKEN_VALUES: dict[str, Strategy[Any]] = {
    "v": st.sampled_from((1, 0, 2, 1.0, True, "1", None, 10**20)),
    "k": st.sampled_from(("messages", "sessions", "", "other", 1, None)),
    "f": st.one_of(st.sampled_from(("", "0" * 16, 16, None, [])), texts(16)),
    "p": st.one_of(json_values(4), st.sampled_from(({}, [], None, "s", 1))),
}


@st.composite
def _edited(draw: st.DrawFn, fields: Mapping[str, Any], odd: Mapping[str, Strategy[Any]]) -> Any:
    """`fields` with each key kept, dropped or given an odd value, and maybe a key more."""
    edited = dict(fields)
    for key in sorted({*fields, *odd}):
        action = draw(st.sampled_from(("keep", "keep", "drop", "odd")))
        if action == "drop":
            edited.pop(key, None)
        elif action == "odd" and key in odd:
            edited[key] = draw(odd[key])
    if draw(st.integers(0, 4)) == 0:
        edited[draw(texts(4))] = draw(json_values(3))
    return edited


@st.composite
def forged_tokens(draw: st.DrawFn, seed: str) -> str:
    """`seed`'s payload with fields dropped, retyped or out of range, encoded again."""
    payload = decode_token(seed)
    if not isinstance(payload, dict):
        payload = {"v": 1, "k": "messages", "f": "0" * 16, "p": {"s": 1}}
    forged = draw(_edited(payload, TOKEN_VALUES))
    position = forged.get("p")
    if isinstance(position, dict) and draw(st.booleans()):
        forged["p"] = draw(_edited(position, POSITION_VALUES))
    return encode_token(forged)


@st.composite
def _text_mutations(draw: st.DrawFn, seed: str) -> str:
    text = seed or "e30"
    at = draw(st.integers(0, len(text) - 1))
    edit = draw(st.sampled_from(("cut", "replace", "insert", "pad", "alphabet", "case")))
    if edit == "cut":
        return text[:at]
    if edit == "replace":
        return text[:at] + draw(st.sampled_from("A_-+/=\x00 \u00e9")) + text[at + 1 :]
    if edit == "insert":
        return text[:at] + draw(texts(4)) + text[at:]
    if edit == "pad":
        return text + draw(st.sampled_from(("=", "==", "===", "\n", " ")))
    if edit == "alphabet":
        return text.replace("-", "+").replace("_", "/")
    return text.swapcase()


@cache
def page_tokens(seed: str) -> Strategy[str]:
    """The issued token `seed`, mutated, forged from its payload, or not a token at all."""
    not_json = st.binary(max_size=48).map(lambda raw: base64.urlsafe_b64encode(raw).decode())
    deep = st.builds(
        deep_json, st.sampled_from((1_000, 100_000)), st.sampled_from(("[", '{"a":'))
    ).map(lambda text: base64.urlsafe_b64encode(text.encode()).decode())
    return st.one_of(
        st.just(seed),
        _text_mutations(seed),
        forged_tokens(seed),
        forged_tokens(seed),
        forged_tokens(seed),
        json_values(6).map(encode_token),
        not_json,
        deep,
        texts(),
    )


# -- upstream replies ---------------------------------------------------------------------------

REPLY_NUMBERS: tuple[Any, ...] = (
    *(2**70, -(2**70), 2**63, -(2**63) - 1, 2**64, 10**30, 1e30, -1e30, 1.5, 0, -1),
    *(float("nan"), float("inf"), float("-inf"), True, None, "1"),
)
REPLY_STRINGS = (
    "\x00",
    "a\x00b",
    "\ud800",
    "a\udfffb",
    "\udc80\udc80",
    "\ud83d",  # half of an emoji
    "",
    "\u2028\u2029",
)


@cache
def reply_numbers() -> Strategy[Any]:
    return st.one_of(st.integers(), st.sampled_from(REPLY_NUMBERS))


@cache
def reply_texts(huge: bool = True) -> Strategy[str]:
    """Texts an upstream's JSON can spell: NULs and lone surrogate escapes included."""
    return st.one_of(texts(40, huge), st.sampled_from(REPLY_STRINGS))


@cache
def reply_scalars(huge: bool = False) -> Strategy[Any]:
    return st.one_of(st.none(), st.booleans(), reply_numbers(), reply_texts(huge))


@cache
def reply_json(max_leaves: int = 6) -> Strategy[Any]:
    return st.recursive(
        reply_scalars(),
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(texts(8, huge=False), children, max_size=3),
        ),
        max_leaves=max_leaves,
    )


@cache
def reply_contents() -> Strategy[Any]:
    parts = st.one_of(
        st.fixed_dictionaries({"type": st.just("text"), "text": reply_scalars()}),
        content_part_dicts(),
        reply_json(3),
    )
    return st.one_of(reply_texts(), st.none(), st.lists(parts, max_size=4), reply_json())


@cache
def reply_tool_calls() -> Strategy[Any]:
    function = st.fixed_dictionaries(
        {}, optional={"name": reply_scalars(), "arguments": st.one_of(reply_texts(), reply_json())}
    )
    call = st.fixed_dictionaries(
        {},
        optional={
            "id": st.one_of(uuid4s(), reply_scalars()),
            "type": st.one_of(st.just("function"), reply_scalars()),
            "function": st.one_of(function, reply_json(3)),
            "index": reply_numbers(),
        },
    )
    return st.one_of(st.lists(st.one_of(call, call, reply_json(3)), max_size=3), reply_json(3))


def _message_fields() -> dict[str, Strategy[Any]]:
    return {
        "content": reply_contents(),
        "tool_calls": reply_tool_calls(),
        "refusal": reply_scalars(),
        "function_call": reply_json(3),
        "audio": reply_json(3),
        "annotations": reply_json(3),
        "name": reply_scalars(),
    }


def _choice(body_key: str, body: Strategy[Any]) -> Strategy[Any]:
    plausible = st.fixed_dictionaries(
        {
            "index": st.one_of(st.just(0), reply_numbers()),
            body_key: body,
            "finish_reason": st.one_of(st.just("stop"), reply_scalars()),
        },
        optional={"logprobs": reply_json(3)},
    )
    partial = st.fixed_dictionaries(
        {}, optional={"index": reply_numbers(), body_key: body, "finish_reason": reply_scalars()}
    )
    return st.one_of(plausible, plausible, partial, reply_json(3))


def _envelope(kind: str, choice: Strategy[Any]) -> Strategy[dict[str, Any]]:
    usage = st.fixed_dictionaries(
        {},
        optional={
            name: reply_numbers() for name in ("prompt_tokens", "completion_tokens", "total_tokens")
        },
    )
    return st.fixed_dictionaries(
        {"choices": st.one_of(st.lists(choice, min_size=1, max_size=3), reply_json(3))},
        optional={
            "id": st.one_of(st.just("chatcmpl-fuzz"), reply_scalars()),
            "object": st.one_of(st.just(kind), reply_scalars()),
            "created": reply_numbers(),
            "model": st.one_of(st.just(MODEL), reply_scalars()),
            "usage": st.one_of(usage, reply_json(3)),
            "system_fingerprint": reply_scalars(),
        },
    )


@cache
def completions() -> Strategy[dict[str, Any]]:
    """chat.completion objects, most nearly right, every part of them possibly odd."""
    message = st.fixed_dictionaries(
        {"role": st.one_of(st.just("assistant"), reply_scalars())}, optional=_message_fields()
    )
    return _envelope("chat.completion", _choice("message", st.one_of(message, reply_json(3))))


@cache
def chunks() -> Strategy[dict[str, Any]]:
    delta = st.fixed_dictionaries(
        {}, optional={"role": st.one_of(st.just("assistant"), reply_scalars()), **_message_fields()}
    )
    return _envelope("chat.completion.chunk", _choice("delta", st.one_of(delta, reply_json(3))))


FINAL_CHUNK = {
    "id": "chatcmpl-fuzz",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": MODEL,
    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
}


def json_text(value: Any) -> str:
    """JSON as a lax upstream may write it: NaN and Infinity literals, escaped surrogates."""
    return json.dumps(value)


@cache
def sse_events() -> Strategy[str]:
    """The data of one SSE event: a chunk, other JSON, an error event or not JSON at all."""
    return st.one_of(
        chunks().map(json_text),
        chunks().map(json_text),
        reply_json().map(json_text),
        texts(40),  # not JSON (and no lone surrogates: those exist only as JSON escapes)
        st.just('{"error": {"message": "fuzz", "type": "server_error"}}'),
        reply_json(3).map(lambda error: json_text({"error": error})),
    )


@st.composite
def sse_bodies(draw: st.DrawFn) -> str:
    """An SSE stream of odd chunks and events, most ending with a finish reason and [DONE]."""
    event = sse_events()
    events = draw(st.lists(event, max_size=5))
    if draw(st.integers(0, 3)):
        events.append(json_text(FINAL_CHUNK))
    if draw(st.integers(0, 3)):
        events.append("[DONE]")
    if draw(st.integers(0, 5)) == 0:
        events.append(draw(event))  # after [DONE]
    prefix = draw(st.sampled_from(("data: ", "data: ", "data:", "data:  ")))
    separator = draw(st.sampled_from(("\n\n", "\n\n", "\r\n\r\n", "\n")))
    lines = [prefix + text.replace("\n", "\n" + prefix) for text in events]
    if draw(st.integers(0, 4)) == 0:
        lines.insert(0, draw(st.sampled_from((": keep-alive", "event: ping", "id: 1", "retry: 1"))))
    end = draw(st.sampled_from((separator, separator, "")))
    return separator.join(lines) + end


@st.composite
def _cut(draw: st.DrawFn, bodies: Strategy[str]) -> str:
    body = draw(bodies)
    return body[: draw(st.integers(0, max(len(body) - 1, 0)))]


_MARK = "@@bytes@@"


@st.composite
def undecodable_bodies(draw: st.DrawFn, streaming: bool) -> Behaviour:
    """A reply whose bytes are not UTF-8: inside the content of a well-formed reply, or
    anywhere in an odd one (the stand-in's `body_base64`)."""
    if streaming:
        delta = {"index": 0, "delta": {"content": _MARK}, "finish_reason": None}
        first = json_text({**FINAL_CHUNK, "choices": [delta]})
        text = f"data: {first}\n\ndata: {json_text(FINAL_CHUNK)}\n\ndata: [DONE]\n\n"
        kind = "text/event-stream"
    else:
        message = {"role": "assistant", "content": _MARK}
        text = json_text({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})
        kind = "application/json"
    bad = draw(st.sampled_from(INVALID_UTF8))
    if draw(st.booleans()):
        body = text.encode().replace(_MARK.encode(), bad)
    else:
        odd = draw(sse_bodies() if streaming else completions().map(json_text)).encode()
        at = draw(st.integers(0, len(odd)))
        body = odd[:at] + bad + odd[at:]
    return Behaviour(raw={"body_base64": base64.b64encode(body).decode(), "content_type": kind})


RETRY_AFTER = (0, 0.001, 1, 2.5, 86_400, 1e9, 1e20, 1e300, -1, float("inf"), float("nan"))
FAIL_STATUSES = (400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504, 599)


@cache
def scripted_replies() -> Strategy[Behaviour]:
    """The stand-in's own replies, well-formed but odd: text, tool calls and errors with odd
    values, retry hints out of range, streams cut short or without a finish reason."""
    # No huge arguments: the stand-in streams them eight characters a chunk.
    arguments = st.one_of(texts(40, huge=False), st.dictionaries(texts(8), json_values(3)))
    function = st.fixed_dictionaries({"name": texts()}, optional={"arguments": arguments})
    call = st.fixed_dictionaries(
        {"function": function}, optional={"id": texts(), "type": st.just("function")}
    )
    reply = st.fixed_dictionaries(
        {},
        optional={
            "content": st.one_of(st.none(), reply_texts()),
            "tool_calls": st.lists(call, min_size=1, max_size=3),
            "finish_reason": texts(12),
        },
    )
    seconds = st.one_of(st.none(), st.sampled_from(RETRY_AFTER))
    fail = st.fixed_dictionaries(
        {"status": st.sampled_from(FAIL_STATUSES)},
        optional={
            "message": reply_texts(),
            "type": texts(12),
            "code": st.one_of(st.none(), texts(12)),
            "param": st.one_of(st.none(), texts(12)),
            "retry_after": seconds,
            "retry_after_ms": seconds,
        },
    )
    return st.one_of(
        st.builds(lambda spec: Behaviour(reply=spec), reply),
        st.builds(lambda spec: Behaviour(fail=spec), fail),
        st.builds(
            lambda spec, cut: Behaviour(reply=spec, cut_after_chunks=cut),
            reply,
            st.integers(0, 4),
        ),
        st.builds(lambda spec: Behaviour(reply=spec, end_without_finish=True), reply),
    )


STATUSES = (200, 200, 200, 200, 200, 201, 203, 400, 401, 403, 404, 409, 413, 422, 429, 500, 503)


@cache
def upstream_replies(streaming: bool) -> Strategy[Behaviour]:
    """Stand-in `raw` behaviours: odd bodies of the kind the call expects, sometimes not."""
    sse: Strategy[str] = sse_bodies()
    unary = completions().map(json_text)
    expected, other = (sse, unary) if streaming else (unary, sse)
    huge = st.sampled_from((100_000, 1_000_000)).map(
        lambda size: json_text(
            {"choices": [{"index": 0, "message": {"content": "x" * size}, "finish_reason": "stop"}]}
        )
    )
    body = st.one_of(
        expected, expected, expected, other, _cut(expected), reply_json().map(json_text)
    )
    content_type = st.sampled_from(
        (
            "text/event-stream" if streaming else "application/json",
            "application/json",
            "text/event-stream",
            "text/plain",
            "application/json; charset=utf-16",
            "",
        )
    )
    statuses = st.sampled_from(STATUSES)
    return st.one_of(
        st.builds(
            lambda status, text, kind: Behaviour(
                raw={"status": status, "body": text, "content_type": kind}
            ),
            statuses,
            body,
            content_type,
        ),
        st.builds(lambda text: Behaviour(raw={"body": text}), st.one_of(body, huge)),
        undecodable_bodies(streaming),
        scripted_replies(),
    )
