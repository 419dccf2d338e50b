"""A request's fingerprint: a request id reused for a different request is refused."""

from __future__ import annotations

import hashlib

from google.protobuf.message import Message

# Copied per call: building a sha256 by name looks the digest up in OpenSSL every time.
_SHA256 = hashlib.sha256()


def request_fingerprint(request: Message) -> str:
    """The sha256 of the request's deterministic serialization, in hex."""
    digest = _SHA256.copy()
    digest.update(request.SerializeToString(deterministic=True))
    return digest.hexdigest()


__all__ = ["request_fingerprint"]
