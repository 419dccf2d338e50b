"""memori-grpc Python client: the Memori chaining API, with the memory kept by the service.

from openai import OpenAI
from memori_client import Memori

client = OpenAI()
memori = Memori().attribution("user-123", "my-agent").llm.register(client)
client.chat.completions.create(model="gpt-4o-mini", messages=[...])
"""

from memori_client.entities import Erased, ExportedSession
from memori_client.errors import (
    AttributionRequired,
    ClientAlreadyRegistered,
    MemoriClosed,
    MemoriError,
    MemoryOff,
    ServiceError,
    SessionAttributionMismatch,
    SessionError,
    SessionNotFound,
    UnsupportedCall,
)
from memori_client.memori import Memori
from memori_client.memory import RecalledMemory
from memori_client.session import SessionInfo, SessionManager
from memori_client.streams import AsyncChunkStream, ChunkStream

__all__ = [
    "AsyncChunkStream",
    "AttributionRequired",
    "ChunkStream",
    "ClientAlreadyRegistered",
    "Erased",
    "ExportedSession",
    "Memori",
    "MemoriClosed",
    "MemoriError",
    "MemoryOff",
    "RecalledMemory",
    "ServiceError",
    "SessionAttributionMismatch",
    "SessionError",
    "SessionInfo",
    "SessionManager",
    "SessionNotFound",
    "UnsupportedCall",
]
