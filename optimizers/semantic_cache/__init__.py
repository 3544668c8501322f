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

Modules: ``cache`` (:class:`SemanticCache`, the facade), ``index`` (the in-memory search, one index per scope:
SimHash pre-selection, then exact cosine), ``store`` (LanceDB, the durable copy, written in the background).

Scopes are separate indexes: an entry of one scope cannot be a candidate for a lookup of another. Expired entries
(``ttl_s``) never match and are purged lazily; beyond ``max_entries`` the least-recently-used entry (last insert or
verified hit) is evicted; recency is not persisted, so after a restart it is insertion order. ``lookup`` and
``insert`` are thread-safe; the lock is held only for the in-memory search and bookkeeping, never for embedding,
verification or disk I/O.

Garbage collection: entries are stored as columns (lists of str/bytes, numpy arrays), not one object each, so 100k
entries add nothing for the collector to traverse. Importing ``lancedb`` itself, however, creates ~120k tracked
objects, which makes every *full* collection take 45-90 ms; a process that opens a cache should call
``gc.freeze()`` once after start-up so periodic full collections skip them.
"""

from optimizers.semantic_cache.cache import (
    DEFAULT_CANDIDATES,
    DEFAULT_SIMILARITY_THRESHOLD,
    DEFAULT_VERIFY_THRESHOLD,
    CacheMatch,
    CacheStats,
    Embedder,
    SemanticCache,
)
from optimizers.semantic_cache.index import CODE_BITS, simhash
from optimizers.semantic_cache.store import SCHEMA, TABLE_NAME, schema_for

__all__ = [
    "CODE_BITS",
    "DEFAULT_CANDIDATES",
    "DEFAULT_SIMILARITY_THRESHOLD",
    "DEFAULT_VERIFY_THRESHOLD",
    "SCHEMA",
    "TABLE_NAME",
    "CacheMatch",
    "CacheStats",
    "Embedder",
    "SemanticCache",
    "schema_for",
    "simhash",
]
