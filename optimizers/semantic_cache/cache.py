"""The semantic cache facade: :class:`SemanticCache` ties the search index, the verifier and the store together.

A lookup embeds the text (unless the caller passes the vector), searches the scope's in-memory index
(:mod:`.index`), scores the candidates with the verifier (:mod:`optimizers.verify`) and returns the best; an
insert adds to the index, evicts, and queues the row for the durable store (:mod:`.store`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from optimizers.embeddings import DIMENSION
from optimizers.semantic_cache.index import ScopeIndex, simhash
from optimizers.semantic_cache.store import EntryStore, StoredRow
from optimizers.verify import Verifier, VerifierWeights, analyse

__all__ = [
    "DEFAULT_CANDIDATES",
    "DEFAULT_SIMILARITY_THRESHOLD",
    "DEFAULT_VERIFY_THRESHOLD",
    "CacheMatch",
    "CacheStats",
    "Embedder",
    "SemanticCache",
]

_WEIGHTS = VerifierWeights.load()
DEFAULT_SIMILARITY_THRESHOLD = _WEIGHTS.default_similarity
DEFAULT_VERIFY_THRESHOLD = _WEIGHTS.default_threshold
DEFAULT_CANDIDATES = 5  # how many nearest entries the verifier looks at
_PURGE_INTERVAL_S = 60.0


class Embedder(Protocol):
    def encode(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class CacheMatch:
    entry_id: str
    similarity: float  # cosine of the vector search
    verified: bool  # passed the verification stage at the configured threshold
    verify_score: float  # the verifier's score
    text: str  # the stored (cached) prompt text
    response: bytes  # the stored payload (opaque bytes; the gateway stores JSON)
    created_at: float


@dataclass
class CacheStats:
    entries: int = 0
    scopes: int = 0
    lookups: int = 0
    hits: int = 0  # verified matches returned
    unverified: int = 0  # a candidate above the similarity floor that the verifier rejected
    misses: int = 0  # no candidate above the similarity floor
    inserts: int = 0
    evicted: int = 0
    expired: int = 0
    pending_writes: int = 0


class SemanticCache:
    """A per-scope semantic cache of LLM responses, persisted in a LanceDB directory. See the module docstring."""

    def __init__(
        self,
        path: str | Path,
        *,
        embedder: Embedder | None = None,
        dimension: int = DIMENSION,
        similarity_threshold: float = DEFAULT_SIMILARITY_THRESHOLD,
        verify_threshold: float = DEFAULT_VERIFY_THRESHOLD,
        ttl_s: float = 86400,
        max_entries: int = 100_000,
        candidates: int = DEFAULT_CANDIDATES,
        verifier: Verifier | None = None,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.path = Path(path)
        self.dimension = dimension
        self.similarity_threshold = similarity_threshold
        self.verify_threshold = verify_threshold
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.candidates = candidates
        self._embedder = embedder
        self._verifier = verifier or Verifier(_WEIGHTS)
        self._lock = threading.Lock()
        self._scopes: dict[str, ScopeIndex] = {}
        # entry id -> (scope, slot), least recently used first (tuples of str/int are not traversed by the GC)
        self._lru: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._stats = CacheStats()
        self._last_purge = 0.0
        self._store = EntryStore(self.path, dimension)
        try:
            self._load()
        except BaseException:
            self._store.close()  # stop its writer thread: nobody will hold this cache to close it
            raise

    # --- public API ---------------------------------------------------------------------------------------------

    def embed(self, text: str) -> np.ndarray:
        """One unit vector for ``text``, so the gateway can embed once for the lookup and the insert after a miss."""
        if self._embedder is None:
            from optimizers.embeddings import get_embedder

            self._embedder = get_embedder()
        return np.asarray(self._embedder.encode([text])[0], dtype=np.float32)

    def lookup(
        self, scope: str, text: str, *, vector: np.ndarray | None = None, now: float | None = None
    ) -> CacheMatch | None:
        """The best candidate for ``text`` in ``scope`` (verified or not), or None if none is above the floor."""
        matches = self.candidates_for(scope, text, vector=vector, now=now)
        with self._lock:
            self._stats.lookups += 1
            if not matches:
                self._stats.misses += 1
                return None
            best = matches[0]
            if best.verified:
                self._stats.hits += 1
                if best.entry_id in self._lru:
                    self._lru.move_to_end(best.entry_id)
            else:
                self._stats.unverified += 1
        return best

    def candidates_for(
        self, scope: str, text: str, *, vector: np.ndarray | None = None, now: float | None = None, k: int | None = None
    ) -> list[CacheMatch]:
        """Up to ``k`` candidates above the similarity floor, scored by the verifier, best verify score first.

        ``lookup`` is this plus statistics and LRU bookkeeping; the quality bench uses it to sweep thresholds.
        """
        now = time.time() if now is None else now
        vec = self.embed(text) if vector is None else np.asarray(vector, dtype=np.float32).reshape(-1)
        code = simhash(vec)[0]
        with self._lock:
            index = self._scopes.get(scope)
            if index is None:
                return []
            found = index.search(vec, code, k or self.candidates, self.similarity_threshold, now - self.ttl_s)
            rows = [index.match(slot, sim) for slot, sim in found]
        query = analyse(text)
        matches = []
        for entry_id, stored, response, created_at, sim in rows:
            score = self._verifier.score_analysed(query, analyse(stored), sim)
            matches.append(
                CacheMatch(
                    entry_id=entry_id,
                    similarity=sim,
                    verified=score >= self.verify_threshold,
                    verify_score=score,
                    text=stored,
                    response=response,
                    created_at=created_at,
                )
            )
        matches.sort(key=lambda m: (m.verify_score, m.similarity), reverse=True)
        return matches

    def insert(
        self, scope: str, text: str, response: bytes, *, vector: np.ndarray | None = None, now: float | None = None
    ) -> str:
        """Store ``response`` for ``text`` in ``scope``; returns the new entry id. Persisted within ~1 s."""
        now = time.time() if now is None else now
        vec = self.embed(text) if vector is None else np.asarray(vector, dtype=np.float32).reshape(-1)
        if vec.shape != (self.dimension,):
            raise ValueError(f"vector must have shape ({self.dimension},), got {vec.shape}")
        row = StoredRow(uuid.uuid4().hex, scope, text, bytes(response), now, vec)
        code = simhash(vec)[0]
        with self._lock:
            self._add_locked(row, code)
            self._stats.inserts += 1
            removed = self._evict_locked(now)
        self._store.add(row, removed)
        return row.entry_id

    def __len__(self) -> int:
        with self._lock:
            return len(self._lru)

    def stats(self) -> CacheStats:
        with self._lock:
            snapshot = CacheStats(**vars(self._stats))
            snapshot.entries = len(self._lru)
            snapshot.scopes = sum(1 for index in self._scopes.values() if index.count)
        snapshot.pending_writes = self._store.pending()
        return snapshot

    def flush(self) -> None:
        """Write pending inserts and deletions to LanceDB now (``close`` does this too)."""
        self._store.flush()

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> SemanticCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- in-memory bookkeeping (callers hold self._lock) --------------------------------------------------------

    def _add_locked(self, row: StoredRow, code: np.ndarray) -> None:
        index = self._scopes.get(row.scope)
        if index is None:
            index = self._scopes[row.scope] = ScopeIndex(self.dimension)
        slot = index.add(row.entry_id, row.text, row.response, row.created_at, row.vector.astype(np.float16), code)
        self._lru[row.entry_id] = (row.scope, slot)

    def _remove_locked(self, entry_id: str) -> None:
        scope, slot = self._lru.pop(entry_id)
        index = self._scopes[scope]
        index.remove(slot)
        if index.count == 0:
            del self._scopes[scope]

    def _evict_locked(self, now: float) -> list[str]:
        """Drop expired entries (at most once a minute) and the least-recently-used beyond ``max_entries``."""
        removed: list[str] = []
        if now - self._last_purge >= _PURGE_INTERVAL_S:
            self._last_purge = now
            for index in list(self._scopes.values()):
                for entry_id, _slot in index.expired(now - self.ttl_s):
                    self._remove_locked(entry_id)
                    removed.append(entry_id)
            self._stats.expired += len(removed)
        while len(self._lru) > self.max_entries:
            entry_id = next(iter(self._lru))
            self._remove_locked(entry_id)
            removed.append(entry_id)
            self._stats.evicted += 1
        return removed

    def _load(self) -> None:
        """Rebuild the in-memory indexes from the store: unexpired rows, oldest first, capped at ``max_entries``."""
        rows = self._store.load(time.time() - self.ttl_s, self.max_entries)
        if not rows:
            return
        codes = simhash(np.stack([row.vector for row in rows]))
        with self._lock:
            for row, code in zip(rows, codes, strict=True):
                self._add_locked(row, code)
