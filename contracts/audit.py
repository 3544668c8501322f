"""The admin audit log: one Parquet row per admin action on keys and teams — the raw ``audit_log`` contract.

Schema v1 (one row per action; *required* = non-null):
  schema_version  *required* int16. Always ``SCHEMA_VERSION``.
  audit_id        *required* string. Unique id of the action (uuid4 hex).
  occurred_at     *required* timestamp(us, UTC). When the action was applied.
  actor           *required* string. Who: ``admin:<fingerprint>`` for the admin HTTP API (the first 8 hex digits
                  of the SHA-256 of the master key; never the key), ``cli:<os user>`` for ``apex keys``.
  action          *required* string. One of ``ACTIONS``: ``key.created``, ``key.updated``, ``key.rotated``,
                  ``key.revoked``, ``team.updated``.
  target_type     *required* string. ``key`` | ``team``.
  target_id       *required* string. The ``key_id`` or ``team_id``.
  changes         *required* string. JSON object ``{field: [old, new]}`` of the fields the action changed (a
                  created key: every field it was created with, old = null). Never holds a key's secret, hash or
                  hint.

Files: ``<audit dir>/date=YYYY-MM-DD/audit-<writer_id>-<audit_id>.parquet`` (UTC date of ``occurred_at``), each
written under a ``.tmp`` name and renamed into place, plus one zero-row ``_schema_v1.parquet`` at the root so
readers always find the columns. ``<audit dir>`` is ``<data dir>/audit`` (``audit_dir_for``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "ACTIONS",
    "AUDIT_SCHEMA",
    "SCHEMA_VERSION",
    "TARGET_TYPES",
    "AuditRecord",
    "audit_dir_for",
    "ensure_schema_file",
    "write_audit_records",
]

SCHEMA_VERSION = 1
ACTIONS = ("key.created", "key.updated", "key.rotated", "key.revoked", "team.updated")
TARGET_TYPES = ("key", "team")

AUDIT_SCHEMA = pa.schema(
    [
        pa.field("schema_version", pa.int16(), nullable=False),
        pa.field("audit_id", pa.string(), nullable=False),
        pa.field("occurred_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("actor", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),
        pa.field("target_type", pa.string(), nullable=False),
        pa.field("target_id", pa.string(), nullable=False),
        pa.field("changes", pa.string(), nullable=False),
    ],
    metadata={"apex.schema_version": str(SCHEMA_VERSION)},
)


@dataclass(frozen=True)
class AuditRecord:
    actor: str
    action: str
    target_type: str
    target_id: str
    changes: str
    """JSON ``{field: [old, new]}``."""
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    audit_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, not {self.action!r}")
        if self.target_type not in TARGET_TYPES:
            raise ValueError(f"target_type must be one of {TARGET_TYPES}, not {self.target_type!r}")
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware (UTC)")


def audit_dir_for(data_dir: Path) -> Path:
    return Path(data_dir) / "audit"


def ensure_schema_file(audit_dir: Path) -> Path:
    path = Path(audit_dir) / f"_schema_v{SCHEMA_VERSION}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(AUDIT_SCHEMA.empty_table(), path)
    return path


def write_audit_records(audit_dir: Path, records: Iterable[AuditRecord], *, writer_id: str) -> list[Path]:
    """Append ``records``, one new file per record (admin actions are rare; a file each keeps writers from ever
    sharing a name); return the files written."""
    audit_dir = Path(audit_dir)
    ensure_schema_file(audit_dir)
    written = []
    for record in records:
        folder = audit_dir / f"date={record.occurred_at.astimezone(UTC):%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        row = {
            "schema_version": SCHEMA_VERSION,
            "audit_id": record.audit_id,
            "occurred_at": record.occurred_at,
            "actor": record.actor,
            "action": record.action,
            "target_type": record.target_type,
            "target_id": record.target_id,
            "changes": record.changes,
        }
        path = folder / f"audit-{writer_id}-{record.audit_id}.parquet"
        _atomic_write(pa.Table.from_pylist([row], schema=AUDIT_SCHEMA), path)
        written.append(path)
    return written


def _atomic_write(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
