"""The local embedding model: pinned weights, offline, and vectors that behave like sentence embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from optimizers import embeddings
from optimizers.embeddings import DIMENSION, EmbeddingModelError, LocalEmbedder, get_embedder


def test_vectors_are_unit_length_and_rank_paraphrases_first():
    vectors = get_embedder().encode(
        ["How do I learn Python?", "What is the best way to learn Python?", "How do I bake sourdough bread?"]
    )
    assert vectors.shape == (3, DIMENSION)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.8
    assert sims[0, 2] < 0.3


def test_batch_order_is_the_callers_order():
    texts = ["a much longer sentence about invoices and budgets", "short", "medium length text here"]
    batched = get_embedder().encode(texts, batch_size=2)
    one_by_one = np.vstack([get_embedder().encode([t]) for t in texts])
    assert np.allclose(batched, one_by_one, atol=1e-4)


def test_a_model_file_with_another_hash_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not the pinned model")
    monkeypatch.setenv(embeddings.MODEL_PATH_ENV, str(fake))
    with pytest.raises(EmbeddingModelError, match="sha256"):
        LocalEmbedder()


def test_a_missing_model_file_says_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.setenv(embeddings.MODEL_PATH_ENV, str(tmp_path / "absent.onnx"))
    with pytest.raises(EmbeddingModelError, match="make setup"):
        LocalEmbedder()
