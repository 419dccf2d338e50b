"""Server configuration: every setting is a flag of `memori-server` and a MEMORI_* variable."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_LISTEN = "127.0.0.1:50051"
MAX_RETENTION_SECONDS = 100 * 365 * 86400.0


def default_database_url() -> str:
    """An SQLite file under the working directory: the embedded default needs no setup."""
    return f"sqlite:///{Path.cwd() / 'memori.db'}"


class Settings(BaseSettings):
    """Validated server settings; flags override environment, environment overrides defaults."""

    model_config = SettingsConfigDict(env_prefix="MEMORI_", extra="ignore")

    listen: str = Field(
        DEFAULT_LISTEN, description="HOST:PORT to listen on; port 0 picks a free port."
    )
    database_url: str = Field(
        default_factory=default_database_url,
        description="sqlite:///path.db or postgresql://user:password@host:port/db.",
    )
    database_pool_size: int | None = Field(
        None,
        ge=1,
        le=100,
        description="Database connections, and worker threads using them, per process; "
        "default 2 for SQLite (one writer at a time anyway, and fewer threads contend less "
        "with the event loop for the GIL), 8 for PostgreSQL.",
    )
    migrate_on_start: bool = Field(True, description="Apply database migrations before serving.")
    database_fast_paths: bool = Field(
        True,
        description="Run small database work on the event loop (SQLite inline, PostgreSQL "
        "pipelined). Off: every unit of work takes a worker thread; a switch for diagnosis.",
    )
    session_idle_timeout: float = Field(
        86400.0,
        gt=0,
        description="Seconds of inactivity after which Get(attribution) no longer returns "
        "the attribution's current session.",
    )
    shutdown_grace: float = Field(
        30.0,
        ge=0,
        description="Seconds in-flight calls get to finish on SIGTERM/SIGINT; calls still "
        "running then are cancelled (nothing of them is stored, their request ids are freed).",
    )
    max_message_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest request message accepted, in bytes."
    )
    health_check_interval: float = Field(
        5.0, gt=0, description="Seconds between database probes of the health service."
    )
    api_keys: SecretStr = Field(
        SecretStr(""),
        description="Comma-separated tenant=key pairs (or tenant=sha256:<hex of key>); when "
        "set, memori.v1 calls need 'authorization: Bearer <key>' and act for that tenant. "
        "Prefer the variable or --api-keys-file: command lines are visible to other users.",
    )
    api_keys_file: Path | None = Field(
        None, description="File of tenant=key lines (# comments), in addition to --api-keys."
    )
    tls_cert_file: Path | None = Field(
        None, description="PEM certificate chain; with --tls-key-file the server speaks TLS."
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of --tls-cert-file.")
    metrics_listen: str = Field(
        "", description="HOST:PORT serving Prometheus metrics at /metrics; empty: off."
    )
    upstream_base_url: str = Field(
        "",
        description="Base URL of the OpenAI-compatible upstream, e.g. https://api.openai.com/v1 "
        "or http://localhost:11434/v1 (Ollama); empty: OPENAI_BASE_URL, else OpenAI's.",
    )
    upstream_api_key: SecretStr = Field(
        SecretStr(""),
        description="API key sent to the upstream; empty: OPENAI_API_KEY. Prefer the variable: "
        "command lines are visible to other users.",
    )
    upstream_timeout: float = Field(
        600.0,
        gt=0,
        description="Seconds an upstream call may take when the caller sets no gRPC deadline "
        "(with a deadline, the time left is the upstream timeout).",
    )
    upstream_max_retries: int = Field(
        0,
        ge=0,
        le=5,
        description="Retries of a failed upstream call (connection errors, 408/409/429/5xx) with "
        "the openai SDK's backoff, within the caller's deadline. Default 0: the caller sees the "
        "upstream's error (with RetryInfo) and decides.",
    )
    upstream_max_connections: int = Field(
        1000, ge=1, description="Pooled HTTP connections to the upstream, per process."
    )
    history_token_budget: int = Field(
        8000,
        ge=0,
        description="Tokens of stored history sent upstream per call; the oldest whole turns "
        "beyond it are left out (they stay stored). 0 sends no stored history.",
    )
    history_cache_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        description="Memory for the history windows this process holds between calls, so a "
        "call reads only the messages stored since (the least recently used go first; "
        "about the windows' JSON size plus 120 bytes a message). 0 reads every window "
        "from the database on every call.",
    )
    history_cache_idle: float = Field(
        600.0,
        gt=0,
        description="Seconds after which the window of a session no call used is let go, so "
        "a conversation does not stay in memory once it has gone quiet.",
    )
    idempotency_retention: float = Field(
        86400.0,
        gt=0,
        le=MAX_RETENTION_SECONDS,
        description="How long a request_id's result is kept (seconds, or with a unit: 90m, "
        "24h, 7d); a retry within it returns the stored result without calling the upstream "
        "again.",
    )
    session_retention: float | None = Field(
        None,
        gt=0,
        le=MAX_RETENTION_SECONDS,
        description="Delete sessions idle longer than this (seconds, or 90m, 24h, 30d), with "
        "their messages, in small batches in the background. Unset: sessions are kept until "
        "deleted or their entity is erased.",
    )
    housekeeping_interval: float = Field(
        60.0,
        gt=0,
        description="Seconds between background rounds that purge expired request ids, "
        "delete sessions past --session-retention and forget old erasure records.",
    )
    memory: bool = Field(
        False,
        description="Long-term memory: index stored messages in the background (local "
        "embeddings and full-text, nothing leaves the server) and serve MemoryService and "
        "recall. Off: nothing is indexed and memory calls are FAILED_PRECONDITION.",
    )
    recall_default: bool = Field(
        False,
        description="Recall long-term memory into completions whose request does not say "
        "(needs --memory). Off: only calls that ask for recall get it.",
    )
    memory_search_mode: Literal["hybrid", "lexical", "dense"] = Field(
        "hybrid",
        description="How memory is searched: hybrid (full-text and embeddings, fused by rank), "
        "or one of the two alone (for comparison).",
    )
    memory_index_duty: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of one core the background indexer may use for embedding at most "
        "(it embeds at the lowest scheduling priority anyway, so it takes idle CPU first); "
        "below 1 it rests between batches.",
    )
    memory_index_threads: int = Field(
        2,
        ge=1,
        le=64,
        description="Threads the indexer's model session may use (at the lowest priority, so "
        "they only take cores nothing else wants). Its own session: about 100 MiB more "
        "memory than search alone.",
    )
    memory_index_interval: float = Field(
        2.0,
        gt=0,
        description="Seconds between the indexer's looks for messages stored by other server "
        "processes (this process's own turns wake it at once).",
    )
    memory_cache_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        description="Memory for the entities' embedding vectors held between searches (about "
        "800 bytes a passage); 0 reads them for every search.",
    )
    sqlite_synchronous: Literal["full", "normal"] = Field(
        "full",
        description="SQLite's synchronous mode: full (an acknowledged turn survives a power loss "
        "or an OS crash) or normal (faster commits; a process crash loses nothing, a power "
        "loss may lose the last acknowledged turns).",
    )
    allow_unauthenticated: bool = Field(
        False,
        description="Serve without API keys on an address beyond loopback. Without it, serve "
        "refuses to start there unless --api-keys or --api-keys-file gives keys.",
    )
    max_request_messages: int = Field(
        2048,
        ge=1,
        le=100_000,
        description="Most messages one chat request may carry (more is INVALID_ARGUMENT).",
    )
    max_concurrent_rpcs: int = Field(
        2048,
        ge=1,
        description="RPCs one server process runs at once; more are refused with "
        "RESOURCE_EXHAUSTED by gRPC itself.",
    )
    tenant_max_concurrent_completions: int = Field(
        256,
        ge=0,
        description="Chat completions one tenant may run at once per server process; more "
        "are RESOURCE_EXHAUSTED with RetryInfo. 0: no limit.",
    )
    tenant_completions_per_second: float = Field(
        200.0,
        ge=0,
        description="Sustained chat completions per second per tenant and server process "
        "(a token bucket); beyond it RESOURCE_EXHAUSTED with RetryInfo. 0: no limit.",
    )
    tenant_completions_burst: int = Field(
        400,
        ge=1,
        description="Chat completions a tenant may start at once above its per-second rate "
        "(the token bucket's size).",
    )
    max_choices: int = Field(
        16, ge=1, le=128, description="Largest `n` (choices per completion) a request may ask."
    )
    max_stream_duration: float = Field(
        1800.0,
        gt=0,
        description="Seconds a StreamComplete may run in all when the caller set no deadline "
        "(then it ends DEADLINE_EXCEEDED and stores nothing).",
    )
    allowed_models: str = Field(
        "",
        description="Comma-separated tenant=model-pattern entries (fnmatch patterns, e.g. "
        "acme=gpt-4o*); '*=pattern' applies to tenants without entries of their own. Other "
        "models are PERMISSION_DENIED. Empty: every model.",
    )
    extra_parameters: str = Field(
        "",
        description="Comma-separated upstream parameters that extra_json may carry beyond the "
        "OpenAI chat completions parameters (e.g. top_k,repetition_penalty for vLLM).",
    )
    content_url_schemes: str = Field(
        "https,data",
        description="URL schemes allowed in content parts (image_url, file, ...), comma-separated.",
    )
    allow_private_content_urls: bool = Field(
        False,
        description="Allow content-part URLs with a literal IP address or a host that "
        "resolves to a loopback, link-local, private or otherwise non-public address.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest log level written."
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="text (key=value) or json (one object per line)."
    )

    @property
    def pool_size(self) -> int:
        """`database_pool_size`, or the default for the configured database."""
        if self.database_pool_size is not None:
            return self.database_pool_size
        return 2 if self.database_url.startswith("sqlite") else 8

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("listen")
    @classmethod
    def _valid_listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @field_validator("metrics_listen")
    @classmethod
    def _valid_metrics_listen(cls, value: str) -> str:
        if value:
            parse_listen(value)
        return value

    @field_validator("idempotency_retention", "session_retention", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("sqlite_synchronous", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("allowed_models")
    @classmethod
    def _valid_allowed_models(cls, value: str) -> str:
        from memori_server.chat.model_access import ModelAccess

        ModelAccess.parse(value.split(","))
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: give both or neither")
        if self.recall_default and not self.memory:
            raise ValueError("recall_default needs memory: add --memory")
        return self


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float | None:
    """Seconds from "3600", "90m", "24h" or "30d"; "" or "off" is None (no limit)."""
    value = text.strip().lower()
    if value in ("", "off", "none"):
        return None
    unit = _UNITS.get(value[-1:], 1)
    number = value[:-1] if value[-1:] in _UNITS else value
    try:
        seconds = float(number) * unit
    except ValueError:
        raise ValueError(f"{text!r} is not a duration: give seconds, or 90m, 24h, 30d") from None
    return seconds


def parse_listen(listen: str) -> tuple[str, int]:
    """Split HOST:PORT (IPv6 hosts in brackets) and check the port."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"listen address {listen!r} is not HOST:PORT (e.g. 127.0.0.1:50051)")
    return host.strip("[]"), int(port_text)
