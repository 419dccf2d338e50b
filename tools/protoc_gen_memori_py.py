"""protoc plugin that runs the Python generators of grpcio-tools and mypy-protobuf for buf.

buf cannot call the grpc_python generator that lives inside grpcio-tools, so this shim
hands buf's request to ``grpc_tools.protoc`` as a descriptor set and returns its output.

It also writes ``memori_proto/descriptor_set.py``: the contract's descriptors *with* their
documentation comments, which ``_pb2`` modules drop, so server reflection (grpcurl
``describe``) can show them.

Finally it moves the stubs from ``memori/v1`` to ``memori_proto/v1``: the wire package stays
``memori.v1``, but the top-level Python name ``memori`` belongs to the Memori SDK on PyPI,
and generated stubs must import next to it.
"""

from __future__ import annotations

import base64
import os
import re
import sys
import sysconfig
import tempfile
import textwrap
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc

WIRE_PREFIX = "memori/v1/"
PY_PACKAGE = "memori_proto"
_MODULE_REF = re.compile(r"\bmemori\.v1(?=\.\w+_pb2\b| import\b)")
_PACKAGE_MARKERS = {
    f"{PY_PACKAGE}/__init__.py": '"""Generated stubs of memori.v1 (buf generate)."""\n',
    f"{PY_PACKAGE}/py.typed": "",
    f"{PY_PACKAGE}/v1/__init__.py": '"""Generated stubs of the memori.v1 package."""\n',
}


def _plugin(name: str) -> str:
    path = Path(sysconfig.get_path("scripts")) / name
    if not path.exists():
        raise SystemExit(f"{name} not found next to {sys.executable}; install mypy-protobuf")
    return f"--plugin={name}={path}"


def _run_protoc(request: plugin_pb2.CodeGeneratorRequest, workdir: Path) -> dict[str, str]:
    descriptor_set = descriptor_pb2.FileDescriptorSet(file=request.proto_file)
    set_path = workdir / "request.pb"
    set_path.write_bytes(descriptor_set.SerializeToString())
    out = workdir / "out"
    out.mkdir()
    args = [
        "grpc_tools.protoc",
        f"--descriptor_set_in={set_path}",
        _plugin("protoc-gen-mypy"),
        _plugin("protoc-gen-mypy_grpc"),
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *request.file_to_generate,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("grpc_tools.protoc failed")
    return {
        str(path.relative_to(out)): path.read_text()
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }


def _relocate(name: str, content: str) -> tuple[str, str]:
    if name.startswith(WIRE_PREFIX):
        name = f"{PY_PACKAGE}/v1/{name.removeprefix(WIRE_PREFIX)}"
    return name, _MODULE_REF.sub(f"{PY_PACKAGE}.v1", content)


def _documented_descriptors(request: plugin_pb2.CodeGeneratorRequest) -> str:
    wanted = set(request.file_to_generate)
    descriptor_set = descriptor_pb2.FileDescriptorSet(
        file=[f for f in request.proto_file if f.name in wanted]
    )
    encoded = base64.b64encode(descriptor_set.SerializeToString()).decode()
    lines = "\n".join(f'    "{chunk}"' for chunk in textwrap.wrap(encoded, 88))
    return (
        '"""memori.v1 FileDescriptorSet with source comments, for server reflection."""\n\n'
        "import base64\n\n"
        f"FILE_DESCRIPTOR_SET: bytes = base64.b64decode(\n{lines}\n)\n"
    )


def main() -> None:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    with tempfile.TemporaryDirectory() as tmp:
        generated = _run_protoc(request, Path(tmp))
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    generated[f"{PY_PACKAGE}/descriptor_set.py"] = _documented_descriptors(request)
    for name, content in {**_PACKAGE_MARKERS, **generated}.items():
        new_name, new_content = _relocate(name, content)
        response.file.add(name=new_name, content=new_content)
    sys.stdout.buffer.write(response.SerializeToString())


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
