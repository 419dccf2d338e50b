"""Local embeddings: shapes, the sentence-transformers recipe, batching, storage, integrity."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn

import numpy as np
import pytest
from memori_server.memory import embedder as module
from memori_server.memory.embedder import (
    DIMENSIONS,
    MAX_TOKENS,
    Embedder,
    ModelIntegrityError,
    from_stored,
    to_stored,
)

WORDS: tuple[str, ...] = ("apple", "river", "doctor", "invoice", "guitar", "lease", "coffee")
WORDS += ("tax", "sister", "budget", "flight", "recipe", "marathon", "printer", "museum", "Lisbon")


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def varied_texts(count: int, seed: int = 3, longest: int = 300) -> list[str]:
    """Distinct texts from 0 to `longest` words (300: past MAX_TOKENS), in no particular order."""
    rng = random.Random(seed)
    lengths = [n for n in (0, 1, 3, 8, 20, 60, 150, 300) if n <= longest]
    texts = [" ".join(rng.choices(WORDS, k=rng.choice(lengths))) for _ in range(count)]
    return [f"{i} {text}" if i else "" for i, text in enumerate(texts)]


def test_shapes_dtype_and_unit_rows(embedder: Embedder) -> None:
    empty = embedder.embed([])
    assert empty.shape == (0, DIMENSIONS)
    assert empty.dtype == np.float32
    vectors = embedder.embed(["", "hi", "A longer sentence about the garden."])
    assert vectors.shape == (3, DIMENSIONS)
    assert vectors.dtype == np.float32
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one = embedder.embed_one("hi")
    assert one.shape == (DIMENSIONS,)
    np.testing.assert_allclose(one, vectors[1], atol=1e-6)


def test_a_text_in_a_batch_embeds_as_it_does_alone(embedder: Embedder) -> None:
    """More texts than one run takes, of mixed lengths, come back in the order given."""
    texts = varied_texts(45)
    batch = embedder.embed(texts)
    alone = np.stack([embedder.embed_one(text) for text in texts])
    similarity = batch @ alone.T
    assert np.all(np.diag(similarity) > 0.999)
    assert list(similarity.argmax(axis=1)) == list(range(len(texts)))


def test_related_sentences_are_closer_than_unrelated_ones(embedder: Embedder) -> None:
    cat, cat2, tax = embedder.embed(
        [
            "The cat sits on the mat",
            "A cat is sitting on a mat",
            "Quarterly tax filing deadlines are approaching",
        ]
    )
    assert cat @ cat2 > 0.9
    assert cat @ cat2 - cat @ tax > 0.5
    question, answer, other = embedder.embed(
        [
            "Where does my sister live now?",
            "My sister moved to Lisbon last spring.",
            "The office printer is out of toner again.",
        ]
    )
    assert question @ answer - question @ other > 0.2


def test_long_text_is_truncated_at_max_tokens(embedder: Embedder) -> None:
    """Words past MAX_TOKENS pieces do not count; within them they do."""
    filler = "word " * (MAX_TOKENS + 50)
    long, long_plus = embedder.embed([filler, filler + "elephant"])
    assert long @ long_plus > 0.9999
    short, short_plus = embedder.embed(["word " * 10, "word " * 10 + "elephant"])
    assert short @ short_plus < 0.99
    np.testing.assert_allclose(np.linalg.norm(long), 1.0, atol=1e-5)


def test_concurrent_calls_from_threads_agree_with_sequential_ones(embedder: Embedder) -> None:
    batches = [varied_texts(12, seed=seed, longest=60) for seed in range(8)]
    sequential = [embedder.embed(batch) for batch in batches]
    with ThreadPoolExecutor(4) as pool:
        concurrent = list(pool.map(embedder.embed, batches))
    for expected, actual in zip(sequential, concurrent, strict=True):
        np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_stored_round_trip(embedder: Embedder) -> None:
    vectors = embedder.embed(varied_texts(10))
    blobs = to_stored(vectors)
    assert [len(blob) for blob in blobs] == [768] * 10
    assert blobs[3] == vectors[3].astype("<f2").tobytes()
    restored = from_stored(blobs)
    assert restored.shape == (10, DIMENSIONS)
    assert restored.dtype == np.float32
    cosines = (restored * vectors).sum(axis=1) / np.linalg.norm(restored, axis=1)
    assert np.all(cosines > 0.999)
    assert from_stored([]).shape == (0, DIMENSIONS)
    assert to_stored(np.zeros((0, DIMENSIONS), dtype=np.float32)) == []


def test_stored_forms_are_checked() -> None:
    with pytest.raises(ValueError, match="384"):
        to_stored(np.zeros((2, 10), dtype=np.float32))
    with pytest.raises(ValueError, match="384"):
        to_stored(np.zeros(DIMENSIONS, dtype=np.float32))
    with pytest.raises(ValueError, match="768"):
        from_stored([b"\x00" * 768, b"\x00" * 767])


@pytest.mark.parametrize(
    ("constant", "file_name"),
    [("MODEL_SHA256", "model.onnx"), ("TOKENIZER_SHA256", "tokenizer.json")],
)
def test_a_file_that_is_not_the_pinned_one_is_refused(
    monkeypatch: pytest.MonkeyPatch, constant: str, file_name: str
) -> None:
    pinned = getattr(module, constant)
    monkeypatch.setattr(module, constant, "0" * 64)
    with pytest.raises(ModelIntegrityError) as raised:
        Embedder()
    message = str(raised.value)
    assert file_name in message
    assert pinned in message
    assert "0" * 64 in message


def test_loading_and_embedding_never_touch_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert Embedder().embed_one("offline").shape == (DIMENSIONS,)


def test_threads_must_be_positive() -> None:
    with pytest.raises(ValueError, match="threads"):
        Embedder(threads=0)


def test_importing_the_module_loads_no_inference_library() -> None:
    """Storage code uses to_stored/from_stored without paying for onnxruntime."""
    code = (
        "import sys, memori_server.memory.embedder; "
        "assert 'onnxruntime' not in sys.modules and 'tokenizers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
