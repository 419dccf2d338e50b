"""Binding the listening port: plaintext, or TLS when a certificate and key are configured."""

from __future__ import annotations

import grpc

from memori_server.config import Settings


class BindError(Exception):
    """The port cannot be bound or the TLS files cannot be used; says which."""


def bind(server: grpc.aio.Server, settings: Settings) -> int:
    """Add the listening port to `server`; returns the port actually bound."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        credentials = None
    else:
        try:
            certificate = settings.tls_cert_file.read_bytes()
            key = settings.tls_key_file.read_bytes()
        except OSError as error:
            raise BindError(f"cannot read TLS file {error.filename}: {error.strerror}") from error
        credentials = grpc.ssl_server_credentials([(key, certificate)])
    try:
        if credentials is None:
            return server.add_insecure_port(settings.listen)
        return server.add_secure_port(settings.listen, credentials)
    except RuntimeError as error:
        raise BindError(f"cannot listen on {settings.listen}: {error}") from error
