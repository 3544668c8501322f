"""Quarantine of raw Parquet files that break their contract, before dbt reads the glob.

A file whose footer cannot be read, that lacks a required column, or whose column has another type than its
contract says would fail (or silently corrupt) the whole ``read_parquet`` glob, so it is moved out of the
glob's way — ``<raw dir>/_quarantine/<same relative path>.quarantined`` — with a ``.reason.txt`` beside it
naming the file and the column; the rest of the batch loads. Extra columns are allowed (a newer writer).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["QUARANTINE_DIR", "QuarantinedFile", "contract_violation", "quarantine_bad_files"]

QUARANTINE_DIR = "_quarantine"


@dataclass(frozen=True)
class QuarantinedFile:
    source: Path
    moved_to: Path
    reason: str


def contract_violation(path: Path, schema: pa.Schema) -> str | None:
    """Why ``path`` breaks ``schema`` (one line naming the file and column), or None when it conforms."""
    try:
        found = pq.read_schema(path)
    except Exception as exc:  # any unreadable footer is a malformed file, whatever pyarrow raised
        return f"{path.name}: unreadable Parquet ({type(exc).__name__}: {exc})"
    for field in schema:
        if field.name not in found.names:
            if not field.nullable:
                return f"{path.name}: required column {field.name!r} ({field.type}) is missing"
            continue
        actual = found.field(field.name).type
        if actual != field.type:
            return f"{path.name}: column {field.name!r} is {actual}, the contract says {field.type}"
    return None


def quarantine_bad_files(root: Path, files: list[Path], schema: pa.Schema) -> list[QuarantinedFile]:
    """Move every file of ``files`` (under ``root``) that breaks ``schema`` to ``root/_quarantine``."""
    moved = []
    for path in files:
        reason = contract_violation(path, schema)
        if reason is None:
            continue
        target = root / QUARANTINE_DIR / path.relative_to(root)
        target = target.with_name(target.name + ".quarantined")
        if target.exists():  # the same name quarantined before: keep both
            target = target.with_name(f"{target.name}.{datetime.now(UTC):%Y%m%dT%H%M%S%f}")
        target.parent.mkdir(parents=True, exist_ok=True)
        reason_path = target.with_name(target.name.removesuffix(".quarantined") + ".reason.txt")
        reason_path.write_text(f"file: {path}\nreason: {reason}\nquarantined_at: {datetime.now(UTC).isoformat()}\n")
        os.replace(path, target)
        moved.append(QuarantinedFile(path, target, reason))
    return moved
