"""`memori.llm.register(client)`: route an openai client's chat completions through the service.

Registration rebinds `create` and `parse` on the client's own `chat.completions` object (and
its `beta.chat.completions` alias; not on the class), so other clients and every other
method stay untouched. Copies made with
`client.with_options(...)` / `client.copy(...)` are registered too, so a per-call option
never silently bypasses the memory.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import openai

from memori_client.errors import ClientAlreadyRegistered, UnsupportedCall
from memori_client.routes import AsyncRoute, SyncRoute

if TYPE_CHECKING:
    from memori_client.memori import Memori

OpenAIClient = openai.OpenAI | openai.AsyncOpenAI
_PATCHED_COMPLETIONS = ("create", "parse", "with_raw_response", "with_streaming_response")
_PATCHED_CLIENT = ("copy", "with_options")
_owners: weakref.WeakKeyDictionary[OpenAIClient, Memori] = weakref.WeakKeyDictionary()
_owners_lock = threading.Lock()


class _Refused:
    """Stands in for `with_raw_response` / `with_streaming_response` of a registered client."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, method: str) -> Callable[..., NoReturn]:
        def refuse(*args: Any, **kwargs: Any) -> NoReturn:
            raise UnsupportedCall(
                f"chat.completions.{self._name}.{method}(...) cannot go through memori-grpc "
                "(there is no HTTP response to expose); call chat.completions."
                f"{method}(...) instead"
            )

        return refuse


class LLM:
    """`memori.llm`: the openai clients this `Memori` routes."""

    def __init__(self, memori: Memori) -> None:
        self._memori = memori

    def register(self, client: OpenAIClient, *, stream: bool | None = None) -> Memori:
        """Route `client.chat.completions.create/parse` through ChatService; returns the Memori.

        `stream` is accepted for code written for the Memori SDK and has no effect: each call's
        own `stream=True` decides. Registering a client again on the same Memori does nothing;
        a client routed by another open Memori raises ClientAlreadyRegistered (it would write
        into that Memori's sessions otherwise).
        """
        del stream
        if isinstance(client, openai.OpenAI):
            route: SyncRoute | AsyncRoute = SyncRoute(self._memori, client)
        elif isinstance(client, openai.AsyncOpenAI):
            route = AsyncRoute(self._memori, client)
        else:
            raise TypeError(
                "llm.register expects an openai.OpenAI or openai.AsyncOpenAI client, "
                f"not {type(client).__name__}"
            )
        self._memori.connection.check_open()
        with _owners_lock:
            owner = _owners.get(client)
            if owner is self._memori:
                return self._memori
            if owner is not None:
                raise ClientAlreadyRegistered(
                    "this openai client is already registered with another Memori object; "
                    "give each Memori its own client (clients are cheap), or call "
                    "other_memori.llm.unregister(client) first"
                )
            _owners[client] = self._memori
        _bind(client, route, self)
        return self._memori

    def unregister(self, client: OpenAIClient) -> Memori:
        """Give the client back its plain openai behaviour; returns the Memori."""
        with _owners_lock:
            if _owners.get(client) is not self._memori:
                return self._memori
            del _owners[client]
        for completions in _completions_of(client):
            for name in _PATCHED_COMPLETIONS:
                completions.__dict__.pop(name, None)
        for name in _PATCHED_CLIENT:
            client.__dict__.pop(name, None)
        return self._memori

    def unregister_all(self) -> None:
        for client in self.clients:
            self.unregister(client)

    @property
    def clients(self) -> list[OpenAIClient]:
        """The clients this Memori routes now."""
        with _owners_lock:
            return [client for client, owner in _owners.items() if owner is self._memori]


def _completions_of(client: OpenAIClient) -> list[Any]:
    """`client.chat.completions`, and its older alias `client.beta.chat.completions` (a
    separate object), so neither path bypasses the memory."""
    found: list[Any] = [client.chat.completions]
    beta_chat = getattr(getattr(client, "beta", None), "chat", None)
    if beta_chat is not None and hasattr(beta_chat, "completions"):
        found.append(beta_chat.completions)
    return found


def _bind(client: OpenAIClient, route: SyncRoute | AsyncRoute, llm: LLM) -> None:
    for completions in _completions_of(client):
        completions.__dict__.update(
            create=route.create,
            parse=route.parse,
            with_raw_response=_Refused("with_raw_response"),
            with_streaming_response=_Refused("with_streaming_response"),
        )
    copy = client.copy

    def registered_copy(*args: Any, **kwargs: Any) -> Any:
        copied = copy(*args, **kwargs)
        llm.register(copied)
        return copied

    client.__dict__.update(copy=registered_copy, with_options=registered_copy)
