"""Semantic response cache: serve a stored LLM answer when a new prompt asks the same question as a cached one.

Two stages, because embedding similarity alone serves wrong answers ("How do I learn Java?" would get the Python
answer at cosine ~0.8, the same similarity many true paraphrases have):

1. **Vector search** within the caller's scope: the nearest stored prompts by cosine of all-MiniLM-L6-v2 vectors
   (:mod:`optimizers.embeddings`). Candidates below ``similarity_threshold`` are never considered.
2. **Verification** (:mod:`optimizers.verify`): a small logistic model over word-level evidence (content words in
   one prompt only, mismatched numbers / names / negation / question words, ...) scores each of the top
   candidates; the best-scoring one is returned, and ``verified`` says whether it reached ``verify_threshold``.
   ``lookup`` returns the best candidate even when it is not verified, so the gateway can run in shadow mode and
   log what it *would* have served.

Storage: LanceDB (one table, ``entries``) is the durable store; restarting with the same directory keeps the
entries. Searching it per lookup is too slow (a flat scan with a scope filter over 100k rows took 120 ms p50 here;
an ANN index would need retraining as entries churn and still scans unindexed new rows), so the search runs on an
in-memory mirror, one index per scope:

- a 256-bit SimHash code per entry (random hyperplanes, fixed seed), scanned with XOR + popcount — 32 bytes per
  entry — to pick the ~256 nearest codes, then
- exact cosine on those candidates from float16 copies of the vectors (768 bytes per entry).

At 100k entries that is ~0.5 ms per search on one core (an exact float32 scan is ~12 ms: memory-bound). Hamming
distance over 256 random hyperplanes estimates the angle well: on the QQP texts every true top-5 neighbour with
cosine >= 0.75 of 500 queries at 100k entries was found. Memory: ~0.8 kB per entry plus its text and response
(the responses are kept in memory too, so a hit never reads the disk).

Scopes are separate indexes: an entry of one scope cannot be a candidate for a lookup of another. Expired entries
(``ttl_s``) never match and are purged lazily; beyond ``max_entries`` the least-recently-used entry (last insert or
verified hit) is evicted; recency is not persisted, so after a restart it is insertion order. Writes to LanceDB are
batched on a background thread, so ``insert`` only touches memory (~15 us; the price: entries inserted in the last
~second before a crash are lost — acceptable for a cache). ``lookup`` and ``insert`` are thread-safe; the lock is
held only for the in-memory search and bookkeeping, never for embedding, verification or disk I/O.

Garbage collection: entries are stored as columns (lists of str/bytes, numpy arrays), not one object each, so 100k
entries add nothing for the collector to traverse. Importing ``lancedb`` itself, however, creates ~120k tracked
objects, which makes every *full* collection take 45-90 ms; a process that imports this module should call
``gc.freeze()`` once after start-up so periodic full collections skip them.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import pyarrow as pa

from optimizers.embeddings import DIMENSION
from optimizers.verify import Verifier, VerifierWeights, analyse

log = logging.getLogger(__name__)

_WEIGHTS = VerifierWeights.load()
DEFAULT_SIMILARITY_THRESHOLD = _WEIGHTS.default_similarity
DEFAULT_VERIFY_THRESHOLD = _WEIGHTS.default_threshold
DEFAULT_CANDIDATES = 5  # how many nearest entries the verifier looks at
TABLE_NAME = "entries"
CODE_BITS = 256
_CODE_WORDS = CODE_BITS // 64
_PRESELECT = 256  # Hamming pre-selection size before the exact cosine
_FLUSH_INTERVAL_S = 1.0
_FLUSH_BATCH = 512
_OPTIMIZE_EVERY_FLUSHES = 64
_PURGE_INTERVAL_S = 60.0


def schema_for(dimension: int) -> pa.Schema:
    """The LanceDB table's schema for vectors of ``dimension`` floats (384 for the local model)."""
    return pa.schema(
        [
            pa.field("id", pa.string()),
            pa.field("scope", pa.string()),
            pa.field("text", pa.string()),
            pa.field("response", pa.binary()),
            pa.field("created_at", pa.float64()),
            pa.field("vector", pa.list_(pa.float32(), dimension)),
        ]
    )


SCHEMA = schema_for(DIMENSION)


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


@functools.lru_cache(maxsize=8)
def _hyperplanes(dimension: int) -> np.ndarray:
    # A fixed projection per dimension, so codes are stable across restarts (rebuilt from the stored vectors).
    return np.random.default_rng(20240601).standard_normal((dimension, CODE_BITS)).astype(np.float32)


def simhash(vectors: np.ndarray) -> np.ndarray:
    """Sign bits of random projections, packed into ``uint64[n, CODE_BITS / 64]``."""
    vectors = np.atleast_2d(vectors).astype(np.float32, copy=False)
    bits = (vectors @ _hyperplanes(vectors.shape[1])) > 0
    return np.packbits(bits, axis=1).view(np.uint64)


class _Row(NamedTuple):
    """One entry on its way to LanceDB (and the arguments of an in-memory add)."""

    entry_id: str
    scope: str
    text: str
    response: bytes
    created_at: float
    vector: np.ndarray


class _ScopeIndex:
    """The entries of one scope: float16 vectors, column-major SimHash codes and per-slot columns.

    Plain lists of str/bytes and numpy arrays rather than one object per entry: the garbage collector has to
    traverse every container object on a full collection, and 100k entry objects made that ~120 ms (a pause for the
    whole gateway); strings, bytes and arrays are not tracked. Slots of removed entries are reused, so nothing ever
    needs compaction; ``size`` is the high-water mark.
    """

    __slots__ = ("vectors", "codes", "created", "alive", "ids", "texts", "responses", "free", "size", "count")

    def __init__(self, dimension: int, capacity: int = 16) -> None:
        self.vectors = np.zeros((capacity, dimension), np.float16)
        self.codes = np.zeros((_CODE_WORDS, capacity), np.uint64)
        self.created = np.zeros(capacity, np.float64)
        self.alive = np.zeros(capacity, bool)
        self.ids: list[str | None] = [None] * capacity
        self.texts: list[str | None] = [None] * capacity
        self.responses: list[bytes | None] = [None] * capacity
        self.free: list[int] = []
        self.size = 0
        self.count = 0

    def add(
        self, entry_id: str, text: str, response: bytes, created: float, vector: np.ndarray, code: np.ndarray
    ) -> int:
        if self.free:
            slot = self.free.pop()
        else:
            slot = self.size
            self.size += 1
            if slot >= len(self.alive):
                self._grow()
        self.vectors[slot] = vector
        self.codes[:, slot] = code
        self.created[slot] = created
        self.alive[slot] = True
        self.ids[slot], self.texts[slot], self.responses[slot] = entry_id, text, response
        self.count += 1
        return slot

    def remove(self, slot: int) -> None:
        if self.alive[slot]:
            self.alive[slot] = False
            self.ids[slot] = self.texts[slot] = self.responses[slot] = None
            self.free.append(slot)
            self.count -= 1

    def expired(self, oldest: float) -> list[tuple[str, int]]:
        """(entry id, slot) of the live entries created before ``oldest``."""
        slots = np.flatnonzero(self.alive[: self.size] & (self.created[: self.size] < oldest))
        return [(self.ids[slot], int(slot)) for slot in slots]  # type: ignore[misc]

    def match(self, slot: int, similarity: float) -> tuple[str, str, bytes, float, float]:
        return (self.ids[slot], self.texts[slot], self.responses[slot], float(self.created[slot]), similarity)  # type: ignore[return-value]

    def _grow(self) -> None:
        extra = len(self.alive)
        self.vectors = np.concatenate([self.vectors, np.zeros_like(self.vectors)])
        self.codes = np.concatenate([self.codes, np.zeros_like(self.codes)], axis=1)
        self.created = np.concatenate([self.created, np.zeros_like(self.created)])
        self.alive = np.concatenate([self.alive, np.zeros_like(self.alive)])
        for column in (self.ids, self.texts, self.responses):
            column.extend([None] * extra)

    def search(
        self, vector: np.ndarray, code: np.ndarray, k: int, floor: float, oldest: float
    ) -> list[tuple[int, float]]:
        """Up to ``k`` live, unexpired slots with cosine >= ``floor``, best first."""
        n = self.size
        if n == 0:
            return []
        if n <= _PRESELECT:
            slots = np.arange(n)
        else:
            hamming = np.bitwise_count(self.codes[0, :n] ^ code[0]).astype(np.uint16)
            for word in range(1, _CODE_WORDS):
                hamming += np.bitwise_count(self.codes[word, :n] ^ code[word])
            # The _PRESELECT nearest codes (ties at the cut included): a histogram of the distances is cheaper
            # than argpartition over every entry.
            cumulative = np.cumsum(np.bincount(hamming, minlength=CODE_BITS + 1))
            cutoff = int(np.searchsorted(cumulative, _PRESELECT))
            slots = np.flatnonzero(hamming <= cutoff)
        slots = slots[self.alive[slots] & (self.created[slots] >= oldest)]
        if slots.size == 0:
            return []
        sims = self.vectors[slots].astype(np.float32) @ vector
        keep = sims >= floor
        slots, sims = slots[keep], sims[keep]
        order = np.argsort(-sims)[:k]
        return [(int(slots[i]), float(sims[i])) for i in order]


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
        import lancedb

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
        self._scopes: dict[str, _ScopeIndex] = {}
        # entry id -> (scope, slot), least recently used first (tuples of str/int are not traversed by the GC)
        self._lru: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._stats = CacheStats()
        self._last_purge = 0.0
        # Background persistence: rows to add and ids to delete, written by the flusher thread.
        self._io_lock = threading.Lock()
        self._write_lock = threading.Lock()  # one writer at a time: the flusher thread, flush() or close()
        self._pending_add: list[_Row] = []
        self._pending_delete: list[str] = []
        self._flushes = 0
        self._wake = threading.Event()
        self._closed = threading.Event()
        self.path.mkdir(parents=True, exist_ok=True)
        self._db = lancedb.connect(str(self.path))
        try:
            self._table = self._db.open_table(TABLE_NAME)
        except ValueError:  # not created yet
            self._table = self._db.create_table(TABLE_NAME, schema=schema_for(dimension), exist_ok=True)
        stored = self._table.schema.field("vector").type.list_size
        if stored != dimension:
            raise ValueError(
                f"the semantic cache at {self.path} holds {stored}-dimension vectors, not {dimension}: it was filled "
                "with another embedding model. Point cache.semantic.dir elsewhere (or delete the directory)."
            )
        self._load()
        self._flusher = threading.Thread(target=self._flush_loop, name="semantic-cache-flush", daemon=True)
        self._flusher.start()

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
        row = _Row(uuid.uuid4().hex, scope, text, bytes(response), now, vec)
        code = simhash(vec)[0]
        with self._lock:
            self._add_locked(row, code)
            self._stats.inserts += 1
            removed = self._evict_locked(now)
        with self._io_lock:
            self._pending_add.append(row)
            self._pending_delete.extend(removed)
            if len(self._pending_add) >= _FLUSH_BATCH:
                self._wake.set()
        return row.entry_id

    def __len__(self) -> int:
        with self._lock:
            return len(self._lru)

    def stats(self) -> CacheStats:
        with self._lock:
            snapshot = CacheStats(**vars(self._stats))
            snapshot.entries = len(self._lru)
            snapshot.scopes = sum(1 for index in self._scopes.values() if index.count)
        with self._io_lock:
            snapshot.pending_writes = len(self._pending_add) + len(self._pending_delete)
        return snapshot

    def flush(self) -> None:
        """Write pending inserts and deletions to LanceDB now (``close`` does this too)."""
        self._flush_once()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._wake.set()
        self._flusher.join(timeout=30)
        self._flush_once()

    def __enter__(self) -> SemanticCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- in-memory bookkeeping (callers hold self._lock) --------------------------------------------------------

    def _add_locked(self, row: _Row, code: np.ndarray) -> None:
        index = self._scopes.get(row.scope)
        if index is None:
            index = self._scopes[row.scope] = _ScopeIndex(self.dimension)
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

    # --- persistence --------------------------------------------------------------------------------------------

    def _load(self) -> None:
        """Rebuild the in-memory indexes from LanceDB: unexpired rows, oldest first, capped at ``max_entries``."""
        table = self._table.to_arrow()
        if table.num_rows == 0:
            return
        now = time.time()
        created = table.column("created_at").to_numpy()
        order = np.argsort(created, kind="stable")
        alive = order[created[order] >= now - self.ttl_s]
        stale = [table.column("id")[int(i)].as_py() for i in order[created[order] < now - self.ttl_s]]
        if len(alive) > self.max_entries:
            stale += [table.column("id")[int(i)].as_py() for i in alive[: len(alive) - self.max_entries]]
            alive = alive[len(alive) - self.max_entries :]
        vectors = table.column("vector").combine_chunks().flatten().to_numpy().reshape(-1, self.dimension)
        ids, scopes, texts = (table.column(c).to_pylist() for c in ("id", "scope", "text"))
        responses = table.column("response").to_pylist()
        codes = simhash(vectors[alive]) if len(alive) else np.zeros((0, _CODE_WORDS), np.uint64)
        with self._lock:
            for pos, i in enumerate(alive):
                row = _Row(ids[i], scopes[i], texts[i], responses[i], float(created[i]), vectors[i])
                self._add_locked(row, codes[pos])
        if stale:
            self._delete_rows(stale)

    def _flush_loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(_FLUSH_INTERVAL_S)
            self._wake.clear()
            try:
                self._flush_once()
            except Exception:  # keep the flusher alive: a failed write is retried with the next batch
                log.exception("semantic cache: writing to %s failed", self.path)

    def _flush_once(self) -> None:
        with self._write_lock:
            self._write_pending()

    def _write_pending(self) -> None:
        with self._io_lock:
            adds, self._pending_add = self._pending_add, []
            deletes, self._pending_delete = self._pending_delete, []
        if not adds and not deletes:
            return
        try:
            deleted = set(deletes)
            rows = [row for row in adds if row.entry_id not in deleted]
            if rows:
                self._table.add(self._rows_table(rows, self.dimension))
            # Ids evicted before they were ever written need no delete.
            written = deleted - {row.entry_id for row in adds}
            if written:
                self._delete_rows(sorted(written))
        except Exception:
            with self._io_lock:  # put them back, in order, for the next attempt
                self._pending_add[:0] = adds
                self._pending_delete[:0] = deletes
            raise
        self._flushes += 1
        if self._flushes % _OPTIMIZE_EVERY_FLUSHES == 0:
            # Each add is a new fragment and version; compact them and drop old versions now and then.
            self._table.optimize(cleanup_older_than=timedelta(minutes=1))

    def _delete_rows(self, ids: list[str]) -> None:
        # Ids are uuid4 hex (ours); anything else is skipped rather than quoted into the predicate.
        safe = [i for i in ids if i.isalnum()]
        for start in range(0, len(safe), 1000):
            self._table.delete("id IN (" + ",".join(f"'{i}'" for i in safe[start : start + 1000]) + ")")

    @staticmethod
    def _rows_table(rows: list[_Row], dimension: int) -> pa.Table:
        flat = np.concatenate([row.vector.astype(np.float32) for row in rows])
        return pa.table(
            {
                "id": [row.entry_id for row in rows],
                "scope": [row.scope for row in rows],
                "text": [row.text for row in rows],
                "response": [row.response for row in rows],
                "created_at": [row.created_at for row in rows],
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dimension),
            },
            schema=schema_for(dimension),
        )
