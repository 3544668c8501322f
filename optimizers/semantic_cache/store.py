"""The durable copy of the semantic cache's entries: one LanceDB table, written in batches by a background thread.

Restarting with the same directory keeps the entries (:meth:`EntryStore.load` reads back the unexpired ones).
Writes are queued and written by a flusher thread (about once a second, sooner when a batch fills), so an insert
only touches memory (~15 us; the price: entries inserted in the last ~second before a crash are lost — acceptable
for a cache). ``lancedb`` is imported when a store is opened, not with this module: the gateway imports the cache
package on its hot path.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from optimizers.embeddings import DIMENSION

__all__ = ["SCHEMA", "TABLE_NAME", "EntryStore", "StoredRow", "schema_for"]

log = logging.getLogger(__name__)

TABLE_NAME = "entries"
_FLUSH_INTERVAL_S = 1.0
_FLUSH_BATCH = 512
_OPTIMIZE_EVERY_FLUSHES = 64


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


class StoredRow(NamedTuple):
    """One entry on its way to LanceDB (and the arguments of an in-memory add)."""

    entry_id: str
    scope: str
    text: str
    response: bytes
    created_at: float
    vector: np.ndarray


class EntryStore:
    """The ``entries`` table in ``path``, with a queue of pending adds and deletes and the thread that writes them.

    ``add`` is thread-safe and never touches the disk; ``flush`` writes the queue now; ``close`` stops the thread
    after a last flush.
    """

    def __init__(self, path: Path, dimension: int) -> None:
        import lancedb

        self.path = path
        self.dimension = dimension
        self._io_lock = threading.Lock()  # guards the queues
        self._write_lock = threading.Lock()  # one writer at a time: the flusher thread, flush(), close() or load()
        self._pending_add: list[StoredRow] = []
        self._pending_delete: list[str] = []
        self._flushes = 0
        self._wake = threading.Event()
        self._closed = threading.Event()
        path.mkdir(parents=True, exist_ok=True)
        self._db = lancedb.connect(str(path))
        try:
            self._table = self._db.open_table(TABLE_NAME)
        except ValueError:  # not created yet
            self._table = self._db.create_table(TABLE_NAME, schema=schema_for(dimension), exist_ok=True)
        stored = self._table.schema.field("vector").type.list_size
        if stored != dimension:
            raise ValueError(
                f"the semantic cache at {path} holds {stored}-dimension vectors, not {dimension}: it was filled "
                "with another embedding model. Point cache.semantic.dir elsewhere (or delete the directory)."
            )
        self._flusher = threading.Thread(target=self._flush_loop, name="semantic-cache-flush", daemon=True)
        self._flusher.start()

    def load(self, oldest: float, max_entries: int) -> list[StoredRow]:
        """The rows created at or after ``oldest``, oldest first, at most the newest ``max_entries``; the rest are
        deleted from the table."""
        table = self._table.to_arrow()
        if table.num_rows == 0:
            return []
        created = table.column("created_at").to_numpy()
        order = np.argsort(created, kind="stable")
        alive = order[created[order] >= oldest]
        stale = [table.column("id")[int(i)].as_py() for i in order[created[order] < oldest]]
        if len(alive) > max_entries:
            stale += [table.column("id")[int(i)].as_py() for i in alive[: len(alive) - max_entries]]
            alive = alive[len(alive) - max_entries :]
        vectors = table.column("vector").combine_chunks().flatten().to_numpy().reshape(-1, self.dimension)
        ids, scopes, texts = (table.column(c).to_pylist() for c in ("id", "scope", "text"))
        responses = table.column("response").to_pylist()
        rows = [StoredRow(ids[i], scopes[i], texts[i], responses[i], float(created[i]), vectors[i]) for i in alive]
        if stale:
            with self._write_lock:
                self._delete_rows(stale)
        return rows

    def add(self, row: StoredRow | None, deleted: list[str]) -> None:
        """Queue ``row`` (if any) for writing and the ids in ``deleted`` for deletion."""
        with self._io_lock:
            if row is not None:
                self._pending_add.append(row)
            self._pending_delete.extend(deleted)
            if len(self._pending_add) >= _FLUSH_BATCH:
                self._wake.set()

    def pending(self) -> int:
        """Queued adds and deletes not yet written."""
        with self._io_lock:
            return len(self._pending_add) + len(self._pending_delete)

    def flush(self) -> None:
        """Write pending adds and deletes to LanceDB now (``close`` does this too)."""
        with self._write_lock:
            self._write_pending()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._wake.set()
        self._flusher.join(timeout=30)
        self.flush()

    def _flush_loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(_FLUSH_INTERVAL_S)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # keep the flusher alive: a failed write is retried with the next batch
                log.exception("semantic cache: writing to %s failed", self.path)

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
    def _rows_table(rows: list[StoredRow], dimension: int) -> pa.Table:
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
