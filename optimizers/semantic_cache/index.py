"""The in-memory search index of the semantic cache: one :class:`ScopeIndex` per scope.

Searching LanceDB per lookup is too slow (a flat scan with a scope filter over 100k rows took 120 ms p50 here; an
ANN index would need retraining as entries churn and still scans unindexed new rows), so the search runs on an
in-memory mirror of the entries:

- a 256-bit SimHash code per entry (random hyperplanes, fixed seed), scanned with XOR + popcount — 32 bytes per
  entry — to pick the ~256 nearest codes, then
- exact cosine on those candidates from float16 copies of the vectors (768 bytes per entry).

At 100k entries that is ~0.5 ms per search on one core (an exact float32 scan is ~12 ms: memory-bound). Hamming
distance over 256 random hyperplanes estimates the angle well: on the QQP texts every true top-5 neighbour with
cosine >= 0.75 of 500 queries at 100k entries was found. Memory: ~0.8 kB per entry plus its text and response
(the responses are kept in memory too, so a hit never reads the disk).
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["CODE_BITS", "CODE_WORDS", "ScopeIndex", "simhash"]

CODE_BITS = 256
CODE_WORDS = CODE_BITS // 64
_PRESELECT = 256  # Hamming pre-selection size before the exact cosine


@functools.lru_cache(maxsize=8)
def _hyperplanes(dimension: int) -> np.ndarray:
    # A fixed projection per dimension, so codes are stable across restarts (rebuilt from the stored vectors).
    return np.random.default_rng(20240601).standard_normal((dimension, CODE_BITS)).astype(np.float32)


def simhash(vectors: np.ndarray) -> np.ndarray:
    """Sign bits of random projections, packed into ``uint64[n, CODE_BITS / 64]``."""
    vectors = np.atleast_2d(vectors).astype(np.float32, copy=False)
    bits = (vectors @ _hyperplanes(vectors.shape[1])) > 0
    return np.packbits(bits, axis=1).view(np.uint64)


class ScopeIndex:
    """The entries of one scope: float16 vectors, column-major SimHash codes and per-slot columns.

    Plain lists of str/bytes and numpy arrays rather than one object per entry: the garbage collector has to
    traverse every container object on a full collection, and 100k entry objects made that ~120 ms (a pause for the
    whole gateway); strings, bytes and arrays are not tracked. Slots of removed entries are reused, so nothing ever
    needs compaction; ``size`` is the high-water mark.
    """

    __slots__ = ("vectors", "codes", "created", "alive", "ids", "texts", "responses", "free", "size", "count")

    def __init__(self, dimension: int, capacity: int = 16) -> None:
        self.vectors = np.zeros((capacity, dimension), np.float16)
        self.codes = np.zeros((CODE_WORDS, capacity), np.uint64)
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
            for word in range(1, CODE_WORDS):
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
