"""The client's own exceptions: misuse of sessions, attribution and registration.

Failures of a chat call itself are raised as the `openai` exception classes instead
(see `openai_errors`), so an app's existing error handling keeps working.
"""

from __future__ import annotations


class MemoriError(Exception):
    """Base class of every exception this client raises itself."""


class AttributionRequired(MemoriError):
    """A call needs an attribution (the end user), and none was set."""


class SessionError(MemoriError):
    """A session the service refused to use or find."""

    def __init__(self, message: str, *, session_id: str, reason: str) -> None:
        super().__init__(message)
        self.session_id = session_id
        self.reason = reason
        """The service's ErrorInfo reason, e.g. SESSION_ATTRIBUTION_MISMATCH."""


class SessionAttributionMismatch(SessionError):
    """The session belongs to another entity/process than this `Memori` is attributed to."""


class SessionNotFound(SessionError):
    """The session does not exist (or belongs to another tenant, which looks the same)."""


class ClientAlreadyRegistered(MemoriError):
    """The openai client is routed through another `Memori` object already."""


class UnsupportedCall(MemoriError, NotImplementedError):
    """An openai client feature that cannot go through the service (e.g. raw HTTP responses)."""


class MemoriClosed(MemoriError):
    """The `Memori` object was closed; its channels are gone."""


class ServiceError(MemoriError):
    """A session, entity or memory call (resume_current, recent, delete, history, erase,
    export, recall) failed for another reason."""

    def __init__(self, message: str, *, code: str, reason: str) -> None:
        super().__init__(message)
        self.code = code
        """The gRPC status name, e.g. UNAVAILABLE or UNAUTHENTICATED."""
        self.reason = reason


class MemoryOff(ServiceError):
    """Long-term memory was asked for (`recall(...)`, `Memori(recall=True)`), but the service
    runs without it: start memori-server with `--memory` (MEMORI_MEMORY=on)."""
