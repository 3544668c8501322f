"""Semantic cache: verification, scope isolation, TTL, eviction, persistence and thread-safety.

Uses the real local embedder (all-MiniLM-L6-v2 int8; ~0.3 s to load, a few ms per text) on a handful of texts, so
the paraphrase / near-miss cases exercise the shipped model and verifier weights, not a stub.
"""

from __future__ import annotations

import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from optimizers.embeddings import DIMENSION, get_embedder
from optimizers.semantic_cache import (
    DEFAULT_SIMILARITY_THRESHOLD,
    DEFAULT_VERIFY_THRESHOLD,
    SemanticCache,
)
from optimizers.verify import Verifier, analyse, stem

SCOPE = "tenant-1|gpt-4o-mini|sys:abc|tools:-|t=0"


@pytest.fixture(scope="module")
def embedder():
    return get_embedder()


@pytest.fixture
def cache(tmp_path: Path, embedder):
    with SemanticCache(tmp_path / "cache", embedder=embedder) as c:
        yield c


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIMENSION).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("How do I learn Python quickly?", "How can I learn Python quickly?"),
        ("What are the best ways to lose weight?", "What is the best way to lose weight?"),
    ],
)
def test_paraphrase_hits_and_is_verified(cache: SemanticCache, stored: str, asked: str) -> None:
    cache.insert(SCOPE, "What is the capital of France?", b"unrelated")
    entry = cache.insert(SCOPE, stored, b'{"answer": "python"}')
    match = cache.lookup(SCOPE, asked)
    assert match is not None
    assert match.entry_id == entry
    assert match.response == b'{"answer": "python"}'
    assert match.verified, match
    assert match.verify_score >= DEFAULT_VERIFY_THRESHOLD
    assert match.similarity >= DEFAULT_SIMILARITY_THRESHOLD


def test_exact_repeat_is_verified(cache: SemanticCache) -> None:
    cache.insert(SCOPE, "What is the capital of France?", b"paris")
    match = cache.lookup(SCOPE, "What is the capital of France?")
    assert match is not None and match.verified
    assert match.similarity == pytest.approx(1.0, abs=1e-3)


def test_python_vs_java_is_not_served(cache: SemanticCache) -> None:
    cache.insert(SCOPE, "How do I learn Python?", b"python")
    match = cache.lookup(SCOPE, "How do I learn Java?")
    # The vector search may well propose the Python entry (that is the point of verification) but must not serve it.
    assert match is None or not match.verified, match
    if match is not None:
        assert match.verify_score < DEFAULT_VERIFY_THRESHOLD


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("Is it legal to sell used tickets online?", "Is it illegal to sell used tickets online?"),
        ("How do I prepare for the GRE in 2 months?", "How do I prepare for the GRE in 6 months?"),
        ("How do you convert dollars to rupees?", "How do you convert rupees to dollars?"),
        (
            "Is the 1GB Nvidia GeForce 920m good enough to run AutoCAD?",
            "Is the 2GB Nvidia GeForce 920m good enough to run AutoCAD?",
        ),
    ],
)
def test_one_word_changes_are_not_served(cache: SemanticCache, stored: str, asked: str) -> None:
    cache.insert(SCOPE, stored, b"x")
    match = cache.lookup(SCOPE, asked)
    assert match is None or not match.verified, match


def test_other_scope_never_matches(cache: SemanticCache) -> None:
    cache.insert("tenant-a|model-x", "What is the capital of France?", b"a")
    assert cache.lookup("tenant-b|model-x", "What is the capital of France?") is None
    assert cache.lookup("tenant-a|model-y", "What is the capital of France?") is None
    match = cache.lookup("tenant-a|model-x", "What is the capital of France?")
    assert match is not None and match.response == b"a"


def test_same_text_in_two_scopes_returns_own_payload(cache: SemanticCache) -> None:
    vec = _unit(1)
    cache.insert("s1", "same prompt", b"one", vector=vec)
    cache.insert("s2", "same prompt", b"two", vector=vec)
    assert cache.lookup("s1", "same prompt", vector=vec).response == b"one"
    assert cache.lookup("s2", "same prompt", vector=vec).response == b"two"


def test_ttl_expiry(tmp_path: Path, embedder) -> None:
    with SemanticCache(tmp_path / "ttl", embedder=embedder, ttl_s=60) as cache:
        vec = _unit(2)
        cache.insert(SCOPE, "What is the capital of France?", b"paris", vector=vec, now=1_000.0)
        assert cache.lookup(SCOPE, "What is the capital of France?", vector=vec, now=1_059.0) is not None
        assert cache.lookup(SCOPE, "What is the capital of France?", vector=vec, now=1_061.0) is None
        # The next insert after the purge interval drops the expired entry for good.
        cache.insert(SCOPE, "another", b"x", vector=_unit(3), now=1_200.0)
        assert len(cache) == 1
        assert cache.stats().expired == 1


def test_eviction_at_max_entries_is_lru(tmp_path: Path, embedder) -> None:
    with SemanticCache(tmp_path / "lru", embedder=embedder, max_entries=3) as cache:
        vecs = [_unit(10 + i) for i in range(4)]
        texts = [f"question number {i}" for i in range(4)]
        for i in range(3):
            cache.insert(SCOPE, texts[i], str(i).encode(), vector=vecs[i], now=100.0 + i)
        # A verified hit on entry 0 makes entry 1 the least recently used.
        assert cache.lookup(SCOPE, texts[0], vector=vecs[0], now=104.0).verified
        cache.insert(SCOPE, texts[3], b"3", vector=vecs[3], now=105.0)
        assert len(cache) == 3
        assert cache.stats().evicted == 1
        assert cache.lookup(SCOPE, texts[1], vector=vecs[1], now=106.0) is None
        for i in (0, 2, 3):
            assert cache.lookup(SCOPE, texts[i], vector=vecs[i], now=106.0).response == str(i).encode()


def test_persistence_across_reopen(tmp_path: Path, embedder) -> None:
    path = tmp_path / "persist"
    with SemanticCache(path, embedder=embedder) as cache:
        kept = cache.insert(SCOPE, "How do I learn Python quickly?", b"py")
        cache.insert("other-scope", "How do I learn Python quickly?", b"other")
    with SemanticCache(path, embedder=embedder) as reopened:
        assert len(reopened) == 2
        match = reopened.lookup(SCOPE, "How can I learn Python quickly?")
        assert match is not None and match.verified
        assert (match.entry_id, match.response) == (kept, b"py")
        assert reopened.lookup("never-used", "How do I learn Python quickly?") is None


def test_reopen_drops_expired_and_excess(tmp_path: Path, embedder) -> None:
    path = tmp_path / "reopen"
    now = time.time()
    with SemanticCache(path, embedder=embedder) as cache:
        cache.insert(SCOPE, "old", b"old", vector=_unit(20), now=now - 10_000)
        for i in range(3):
            cache.insert(SCOPE, f"new {i}", b"new", vector=_unit(21 + i), now=now - 10 + i)
    with SemanticCache(path, embedder=embedder, ttl_s=3600, max_entries=2) as reopened:
        assert len(reopened) == 2  # the expired one and the oldest unexpired one are gone
        assert reopened.lookup(SCOPE, "new 0", vector=_unit(21)) is None
        assert reopened.lookup(SCOPE, "new 2", vector=_unit(23)) is not None
    with SemanticCache(path, embedder=embedder) as again:
        assert len(again) == 2  # ... and were deleted from disk too


def test_concurrent_insert_and_lookup(tmp_path: Path, embedder) -> None:
    with SemanticCache(tmp_path / "threads", embedder=embedder, max_entries=500) as cache:
        errors: list[BaseException] = []
        per_thread = 150

        def writer(t: int) -> None:
            try:
                for i in range(per_thread):
                    vec = _unit(1000 * t + i)
                    cache.insert(f"scope-{t % 2}", f"text {t}-{i}", f"{t}-{i}".encode(), vector=vec)
                    match = cache.lookup(f"scope-{t % 2}", f"text {t}-{i}", vector=vec)
                    # Our own entry may only be missing if another thread's insert evicted it meanwhile.
                    if match is not None and match.similarity > 0.999:
                        assert match.response == f"{t}-{i}".encode()
                        assert match.text == f"text {t}-{i}"
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors, errors
        assert len(cache) == 500
        stats = cache.stats()
        assert stats.inserts == 4 * per_thread
        assert stats.evicted == 4 * per_thread - 500
        # Exactly the surviving entries are findable by their own vector, each with its own payload, and never
        # from the other scope (the vectors are random, so nothing else is anywhere near the floor).
        found = 0
        for t in range(4):
            for i in range(per_thread):
                vec = _unit(1000 * t + i)
                match = cache.lookup(f"scope-{t % 2}", "x", vector=vec)
                if match is not None:
                    found += 1
                    assert match.response == f"{t}-{i}".encode()
                    other = cache.lookup(f"scope-{(t + 1) % 2}", "x", vector=vec)
                    assert other is None or other.entry_id != match.entry_id
        assert found == 500
        cache.flush()
    with SemanticCache(tmp_path / "threads", embedder=embedder, max_entries=500) as reopened:
        assert len(reopened) == 500


def test_large_scope_uses_preselection_and_finds_the_neighbour(tmp_path: Path, embedder) -> None:
    rng = np.random.default_rng(5)
    vecs = rng.standard_normal((3000, DIMENSION)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    with SemanticCache(tmp_path / "big", embedder=embedder, similarity_threshold=0.5) as cache:
        for i, v in enumerate(vecs):
            cache.insert(SCOPE, f"entry {i}", str(i).encode(), vector=v)
        for i in (0, 1234, 2999):
            noisy = vecs[i] + 0.3 * rng.standard_normal(DIMENSION).astype(np.float32) / np.sqrt(DIMENSION)
            noisy /= np.linalg.norm(noisy)
            match = cache.lookup(SCOPE, f"entry {i}", vector=noisy)
            assert match is not None and match.response == str(i).encode()


def test_verifier_features_see_the_difference() -> None:
    verifier = Verifier()
    same = verifier.score("How can I improve my English speaking?", "How do I improve my spoken English?", 0.93)
    different = verifier.score("How can I improve my English speaking?", "How can I improve my French speaking?", 0.93)
    assert same > different
    assert analyse("Is life not for everyone?").negated
    assert not analyse("Is life for everyone?").negated
    assert analyse("How do I prepare in 2 months?").numbers == frozenset({"2"})
    assert stem("studying") == stem("studies") == "studi"


class _HashEmbedder:
    """Another embedding model's shape: 64-dimension unit vectors from word hashes (similar texts, similar vectors)."""

    dimension = 64

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, zlib.crc32(word.encode()) % self.dimension] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_other_embedding_dimensions_store_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "provider-embeddings"
    with SemanticCache(path, embedder=_HashEmbedder(), dimension=64) as cache:
        cache.insert("s", "what is the capital of france", b"paris")
        match = cache.lookup("s", "what is the capital of france")
        assert match is not None and match.verified and match.response == b"paris"
        with pytest.raises(ValueError, match=r"shape \(64,\)"):
            cache.insert("s", "x", b"y", vector=np.ones(384, np.float32))
    with SemanticCache(path, embedder=_HashEmbedder(), dimension=64) as reopened:
        assert len(reopened) == 1
    with pytest.raises(ValueError, match="holds 64-dimension vectors, not 384"):
        SemanticCache(path, embedder=_HashEmbedder())
