"""Fuzz cases: what tests/fuzz_strategies.py builds, sent to a real server, with outcomes.

One `Fuzzer` per server. Each case method draws its input from a hypothesis `data` object,
makes the calls, and returns one `Outcome` per call; the test suite asserts that none is
INTERNAL or UNKNOWN (tests/test_fuzz_rpcs.py), the benchmark counts them (bench/fuzz.py).
Every call goes through a generic bytes-in, bytes-out method of a real channel, so what is
sent is exactly the bytes a case drew, and the server does all the parsing.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import itertools
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, cast

import grpc
from google.protobuf import duration_pb2, message_factory, text_format, timestamp_pb2
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from hypothesis import strategies as st
from memori_proto.v1 import chat_pb2, common_pb2, memory_pb2, session_pb2

from standin_upstream import Behaviour
from tests import fuzz_strategies as fs

NEVER = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})
TIMEOUT = 30.0
SHOWN_CHARS = 1_500
SHOWN_STRING = 120  # longer strings are shown by their start and length
READ_BACK_PAGE = 1000  # the largest page ListMessages gives


class Scripter(Protocol):
    """The stand-in upstream's behaviour queue (StandinThread, or its HTTP control API)."""

    def script(self, *behaviours: Behaviour) -> None: ...

    def clear(self) -> None: ...


@dataclass(frozen=True)
class Rpc:
    path: str  # /package.Service/Method
    request_type: type[Message]
    server_streaming: bool
    client_streaming: bool = False

    @property
    def label(self) -> str:
        """SessionService.Get, Health.Check, v1.ServerReflection.ServerReflectionInfo, ..."""
        name = self.path.strip("/").replace("/", ".")
        for package in ("memori.v1.", "grpc.health.v1.", "grpc.reflection."):
            name = name.removeprefix(package)
        return name


def _rpc(method: MethodDescriptor) -> Rpc:
    return Rpc(
        f"/{method.containing_service.full_name}/{method.name}",
        message_factory.GetMessageClass(method.input_type),
        method.server_streaming,
        method.client_streaming,
    )


SERVICES = (
    session_pb2.DESCRIPTOR.services_by_name["SessionService"],
    chat_pb2.DESCRIPTOR.services_by_name["ChatService"],
    memory_pb2.DESCRIPTOR.services_by_name["MemoryService"],
)
HEALTH_CHECK = _rpc(health_pb2.DESCRIPTOR.services_by_name["Health"].methods_by_name["Check"])
# Every method of both services, as the descriptors list them (new RPCs join by themselves).
# (A request without fields, GetIndexStatus's, gives the families nothing to vary.)
MEMORI_RPCS = tuple(
    _rpc(method) for service in SERVICES for method in service.methods if method.input_type.fields
)
_REFLECTION = _rpc(
    reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"].methods_by_name[
        "ServerReflectionInfo"
    ]
)
# Server reflection too (a client reaches it with no .proto at hand), under both its names.
REFLECTION_RPCS = (
    _REFLECTION,
    dataclasses.replace(_REFLECTION, path=_REFLECTION.path.replace(".v1alpha.", ".v1.")),
)
STRUCTURED_RPCS = (*MEMORI_RPCS, HEALTH_CHECK, *REFLECTION_RPCS)
RAW_RPCS = STRUCTURED_RPCS


def rpc_named(label: str) -> Rpc:
    return next(rpc for rpc in RAW_RPCS if rpc.label == label)


LIST_MESSAGES = rpc_named("SessionService.ListMessages")
LIST = rpc_named("SessionService.List")
GET = rpc_named("SessionService.Get")
COMPLETE = rpc_named("ChatService.Complete")
STREAM_COMPLETE = rpc_named("ChatService.StreamComplete")
TOKEN_RPCS = (LIST, LIST_MESSAGES)
CHAT_RPCS = tuple(rpc for rpc in MEMORI_RPCS if rpc.path.startswith("/memori.v1.ChatService/"))


@dataclass(frozen=True)
class Outcome:
    family: str
    rpc: str
    code: grpc.StatusCode
    details: str
    request: str  # what was sent, readable and shortened

    @property
    def bad(self) -> bool:
        return self.code in NEVER

    def report(self) -> str:
        return (
            f"{self.family} {self.rpc} -> {self.code.name}: {self.details[:300]}\n"
            f"    request: {self.request}"
        )


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]} ...[{len(text) - limit} more chars]... {text[-half:]}"


def _abridged(message: Message) -> Message:
    """A copy with long strings cut, so a request that holds megabytes prints in a line."""
    abridged = type(message)()
    abridged.CopyFrom(message)
    stack = [abridged]
    while stack:
        current = stack.pop()
        for field, value in current.ListFields():
            if field.message_type is not None:
                if field.message_type.GetOptions().map_entry:  # Struct.fields: the values
                    inner = field.message_type.fields_by_name["value"].message_type
                    stack.extend(value.values() if inner is not None else [])
                else:
                    stack.extend(value if field.is_repeated else [value])
            elif field.type == field.TYPE_STRING:
                items = list(value) if field.is_repeated else [value]
                cut = [
                    item
                    if len(item) <= SHOWN_STRING
                    else f"{item[:40]}...[{len(item)} chars of {sorted(set(item))[:4]!r}]"
                    for item in items
                ]
                if field.is_repeated:
                    current.ClearField(field.name)
                    getattr(current, field.name).extend(cut)
                else:
                    setattr(current, field.name, cut[0])
    return abridged


def describe(message: Message, payload: bytes) -> str:
    """The message in text format (long strings cut), and its bytes when they are few."""
    shown = text_format.MessageToString(_abridged(message), as_one_line=True)
    text = f"{type(message).__name__}({shorten(shown)})"
    if len(payload) <= 600:
        text += f" bytes(base64)={base64.b64encode(payload).decode()}"
    return text


def describe_bytes(payload: bytes) -> str:
    if len(payload) <= 600:
        return f"bytes(base64)={base64.b64encode(payload).decode()}"
    return f"{len(payload)} bytes: {shorten(repr(payload), 600)}"


class Fuzzer:
    """Draws cases and sends them to the server behind `channel`; see the module doc."""

    def __init__(self, channel: grpc.Channel, upstream: Scripter, pool: fs.Pool) -> None:
        self.channel = channel
        self.upstream = upstream
        self.pool = pool
        self.overrides = fs.overrides(pool)
        self._requests: dict[str, st.SearchStrategy[Message]] = {}
        self._raw: dict[str, st.SearchStrategy[bytes]] = {}
        self._ids = itertools.count(uuid.uuid4().int & ~(2**64 - 1))

    def fresh_id(self) -> str:
        """A UUID v4 that no other case uses (hypothesis draws the same UUIDs again and
        again, and a reused request id or another owner's session ends the call early)."""
        return str(uuid.UUID(int=next(self._ids), version=4))

    # -- sending ---------------------------------------------------------------------------

    def send(self, rpc: Rpc, payload: bytes) -> tuple[grpc.StatusCode, str, list[bytes]]:
        """(status, details, response bytes) of one call with exactly `payload` as request."""
        try:
            if rpc.client_streaming:
                call = self.channel.stream_stream(rpc.path, None, None)
                replies: list[bytes] = list(call(iter([payload]), timeout=TIMEOUT))
            elif rpc.server_streaming:
                replies = list(self.channel.unary_stream(rpc.path, None, None)(payload, TIMEOUT))
            else:
                replies = [self.channel.unary_unary(rpc.path, None, None)(payload, TIMEOUT)]
        except grpc.RpcError as error:
            failed = cast(grpc.Call, error)  # the sync channel's errors are its calls
            return failed.code(), failed.details() or "", []
        return grpc.StatusCode.OK, "", replies

    def _call(self, family: str, rpc: Rpc, payload: bytes, shown: Callable[[], str]) -> Outcome:
        code, details, _ = self.send(rpc, payload)
        return Outcome(family, rpc.label, code, details, shown() if code in NEVER else "")

    def _message(self, family: str, rpc: Rpc, request: Message) -> Outcome:
        payload = request.SerializeToString()
        return self._call(family, rpc, payload, lambda: describe(request, payload))

    # -- the four families -----------------------------------------------------------------

    def requests(self, rpc: Rpc) -> st.SearchStrategy[Message]:
        if rpc.path not in self._requests:
            pool, chosen = self.pool, self.overrides
            if rpc.label.endswith(".Delete"):
                pool = pool.for_deletes()
                chosen = fs.overrides(pool)
            self._requests[rpc.path] = fs.requests_for(rpc.request_type, pool, chosen)
        return self._requests[rpc.path]

    def structured(self, data: st.DataObject, rpc: Rpc) -> list[Outcome]:
        """One request built field by field from the request's descriptor."""
        request = data.draw(self.requests(rpc), label="request")
        if rpc in CHAT_RPCS:
            self.upstream.clear()  # the plain echo, and no records piling up
        return [self._message("structured", rpc, request)]

    def raw(self, data: st.DataObject, rpc: Rpc) -> list[Outcome]:
        """Random or damaged bytes where a serialized request belongs."""
        if rpc.path not in self._raw:
            valid = self.requests(rpc).map(lambda message: message.SerializeToString())
            self._raw[rpc.path] = fs.raw_requests(valid, fs.descriptor_of(rpc.request_type))
        payload = data.draw(self._raw[rpc.path], label="payload")
        if rpc in CHAT_RPCS:
            self.upstream.clear()
        return [self._call("raw bytes", rpc, payload, lambda: describe_bytes(payload))]

    def page_token(self, data: st.DataObject, rpc: Rpc) -> list[Outcome]:
        """A page token the server issued (mutated or forged) with the request it belongs to."""
        seed = data.draw(st.sampled_from(self.pool.tokens_for(rpc.request_type)), label="seed")
        request = copy.deepcopy(seed.request)
        request.page_token = data.draw(fs.page_tokens(seed.token), label="page_token")
        request.page_size = data.draw(st.sampled_from((0, 1, 2, 1000)), label="page_size")
        return [self._message("page tokens", rpc, request)]

    def upstream_reply(self, data: st.DataObject, rpc: Rpc) -> list[Outcome]:
        """A valid chat call the stand-in answers oddly; then the session must still list.

        With a request id, the call is sent twice: the second one replays what the first
        stored (or, when the first failed, is answered by the plain echo).
        """
        behaviour = data.draw(fs.upstream_replies(rpc.server_streaming), label="upstream")
        owner = data.draw(st.sampled_from(self.pool.owners), label="owner")
        known = data.draw(st.one_of(st.none(), st.sampled_from(owner.session_ids)), label="session")
        session_id = known or self.fresh_id()
        request_id = self.fresh_id() if data.draw(st.booleans(), label="request_id") else ""
        request = rpc.request_type(
            attribution=owner.attribution,
            session_id=session_id,
            request_id=request_id,
            request=data.draw(fs.chat_requests(), label="chat"),
        )
        self.upstream.clear()
        self.upstream.script(behaviour)
        outcomes = [self._message("upstream replies", rpc, request)]
        self.upstream.clear()
        if request_id:
            outcomes.append(self._message("upstream replies", rpc, request))
        for index, outcome in enumerate(outcomes):
            if outcome.bad:
                shown = f"{outcome.request} upstream={shorten(repr(behaviour))}"
                outcomes[index] = dataclasses.replace(outcome, request=shown)
        return outcomes + self.read_back(owner.attribution, session_id, "upstream replies")

    def read_back(
        self, attribution: common_pb2.Attribution, session_id: str, family: str
    ) -> list[Outcome]:
        """Get and every page of ListMessages of a session: a stored session always lists.

        Pages of the largest size, so that sessions the fuzz keeps adding to cost a call or
        two; a page over the client's 4 MiB limit is asked again ten times smaller.
        """
        outcomes = [
            self._message(family, GET, session_pb2.GetRequest(session_id=session_id)),
        ]
        request = session_pb2.ListMessagesRequest(
            session_id=session_id, attribution=attribution, page_size=READ_BACK_PAGE
        )
        for _ in range(100):
            payload = request.SerializeToString()
            code, details, replies = self.send(LIST_MESSAGES, payload)
            shown = describe(request, payload) if code in NEVER else ""
            outcomes.append(Outcome(family, LIST_MESSAGES.label, code, details, shown))
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED and request.page_size > 1:
                request.page_size //= 10
                continue
            if code != grpc.StatusCode.OK:
                break
            page = session_pb2.ListMessagesResponse.FromString(replies[0])
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
        return outcomes


FAMILIES: dict[str, tuple[Callable[[Fuzzer, st.DataObject, Rpc], list[Outcome]], tuple[Rpc, ...]]]
FAMILIES = {
    "structured": (Fuzzer.structured, STRUCTURED_RPCS),
    "raw bytes": (Fuzzer.raw, RAW_RPCS),
    "page tokens": (Fuzzer.page_token, TOKEN_RPCS),
    "upstream replies": (Fuzzer.upstream_reply, CHAT_RPCS),
}

# -- the pool: real sessions and page tokens of the server under test --------------------------


def _unary(channel: grpc.Channel, rpc: Rpc, request: Message, reply: type[Any]) -> Any:
    call = channel.unary_unary(rpc.path, None, None)
    return reply.FromString(call(request.SerializeToString(), TIMEOUT))


def _chat(text: str) -> chat_pb2.ChatCompletionRequest:
    return chat_pb2.ChatCompletionRequest(model=fs.MODEL, messages=[fs.user_message(text)])


def harvest(channel: grpc.Channel, upstream: Scripter, owners: int = 2) -> fs.Pool:
    """Owners with sessions holding two turns each (two more as Delete's victims), and page
    tokens of List and ListMessages."""
    upstream.clear()
    found: list[fs.Owner] = []
    tokens: list[fs.TokenSeed] = []

    def token(request: session_pb2.ListRequest | session_pb2.ListMessagesRequest) -> None:
        request.page_size = 1
        if isinstance(request, session_pb2.ListRequest):
            page: Any = _unary(channel, LIST, request, session_pb2.ListResponse)
        else:
            page = _unary(channel, LIST_MESSAGES, request, session_pb2.ListMessagesResponse)
        assert page.next_page_token, f"no next page for {request}"
        request.page_size = 0
        tokens.append(fs.TokenSeed(request, page.next_page_token))

    for index in range(owners):
        attribution = common_pb2.Attribution(
            entity_id=f"fuzz-{uuid.uuid4().hex[:12]}", process_id=f"fuzz-{index}"
        )
        ids = [str(uuid.uuid4()) for _ in range(4)]
        for session_id in ids:
            for turn in range(2):
                request = chat_pb2.CompleteRequest(
                    attribution=attribution, session_id=session_id, request=_chat(f"turn {turn}")
                )
                _unary(channel, COMPLETE, request, chat_pb2.CompleteResponse)
        for session_id in ids[:2]:
            token(session_pb2.ListMessagesRequest(session_id=session_id))
            token(session_pb2.ListMessagesRequest(session_id=session_id, attribution=attribution))
        token(session_pb2.ListRequest(attribution=attribution))
        token(
            session_pb2.ListRequest(
                attribution=attribution, active_within=duration_pb2.Duration(seconds=3_600)
            )
        )
        token(
            session_pb2.ListRequest(
                attribution=attribution, min_update_time=timestamp_pb2.Timestamp(seconds=1)
            )
        )
        found.append(fs.Owner(attribution, tuple(ids[:2]), victims=tuple(ids[2:])))
    return fs.Pool(tuple(found), tuple(tokens))


# -- still serving ----------------------------------------------------------------------------


def serving_problems(channel: grpc.Channel, upstream: Scripter) -> list[str]:
    """Empty when health says SERVING and a plain Complete is answered; else what failed."""
    problems: list[str] = []
    try:
        health = _unary(
            channel, HEALTH_CHECK, health_pb2.HealthCheckRequest(), health_pb2.HealthCheckResponse
        )
    except grpc.RpcError as error:
        problems.append(f"Health/Check failed: {error}")
    else:
        if health.status != health_pb2.HealthCheckResponse.SERVING:
            problems.append(f"Health/Check answered {health}")
    upstream.clear()
    text = f"still serving? {uuid.uuid4()}"
    request = chat_pb2.CompleteRequest(
        attribution=common_pb2.Attribution(entity_id=f"fuzz-{uuid.uuid4().hex[:12]}"),
        request=_chat(text),
    )
    try:
        response = _unary(channel, COMPLETE, request, chat_pb2.CompleteResponse)
    except grpc.RpcError as error:
        problems.append(f"a plain Complete failed: {error}")
    else:
        answer = (
            response.completion.choices[0].message.content if response.completion.choices else ""
        )
        if text not in answer:
            problems.append(f"a plain Complete answered {answer!r}")
    return problems


def bad(outcomes: Iterable[Outcome]) -> list[Outcome]:
    return [outcome for outcome in outcomes if outcome.bad]
