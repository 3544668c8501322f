"""Validation-run records (metered for BVM) and their Parquet writer: the raw ``validation_runs`` contract.

Schema v1 (one row per validation run; *required* = non-null):
  schema_version  *required* int16. Always ``SCHEMA_VERSION``.
  run_id          *required* string. Unique id of the run (uuid4 hex); rewriting a run keeps its run_id.
  customer_id     *required* string. Apex customer billed for the run.
  started_at      *required* timestamp(us, UTC). When the run's compute started.
  ended_at        *required* timestamp(us, UTC). When it was released (>= started_at).
  cpu_cores       *required* int32. vCPUs the run held.
  gpus            *required* int32. GPUs the run held (0 for CPU-only runs).
  instance_type   *required* string. Cloud instance type (``g5.xlarge``); priced by the dbt seed
                  ``cloud_instance_prices`` — an unknown type blocks the charge, it is never billed as 0.
  validated       *required* string. What was validated, ``<kind>:<version or hash>``, e.g.
                  ``routing_policy:v3`` or ``terraform:plan-<sha12>``.
  outcome         *required* string. ``passed`` | ``failed`` | ``error``.

Files: ``<runs_dir>/date=YYYY-MM-DD/runs-<writer_id>-<seq>.parquet`` (UTC date of ``started_at``), each written
under a ``.tmp`` name and renamed into place, plus one zero-row ``_schema_v1.parquet`` at the root so readers
always find the columns. ``<runs_dir>`` is ``<data dir>/validation_runs`` (``runs_dir_for``).
"""

from __future__ import annotations

import os
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "OUTCOMES",
    "SCHEMA_VERSION",
    "VALIDATION_RUN_SCHEMA",
    "ValidationRun",
    "ensure_schema_file",
    "runs_dir_for",
    "synthetic_validation_runs",
    "write_validation_runs",
]

SCHEMA_VERSION = 1
OUTCOMES = ("passed", "failed", "error")

_TS = pa.timestamp("us", tz="UTC")
VALIDATION_RUN_SCHEMA = pa.schema(
    [
        pa.field("schema_version", pa.int16(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("started_at", _TS, nullable=False),
        pa.field("ended_at", _TS, nullable=False),
        pa.field("cpu_cores", pa.int32(), nullable=False),
        pa.field("gpus", pa.int32(), nullable=False),
        pa.field("instance_type", pa.string(), nullable=False),
        pa.field("validated", pa.string(), nullable=False),
        pa.field("outcome", pa.string(), nullable=False),
    ],
    metadata={"apex.schema_version": str(SCHEMA_VERSION)},
)


@dataclass(frozen=True)
class ValidationRun:
    run_id: str
    customer_id: str
    started_at: datetime
    ended_at: datetime
    cpu_cores: int
    gpus: int
    instance_type: str
    validated: str
    outcome: str

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {self.outcome!r}")
        if self.started_at.tzinfo is None or self.ended_at.tzinfo is None:
            raise ValueError("started_at and ended_at must be timezone-aware (UTC)")
        if self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        if self.cpu_cores < 0 or self.gpus < 0:
            raise ValueError("cpu_cores and gpus must be >= 0")


def runs_dir_for(data_dir: Path) -> Path:
    return Path(data_dir) / "validation_runs"


def ensure_schema_file(runs_dir: Path) -> Path:
    path = Path(runs_dir) / f"_schema_v{SCHEMA_VERSION}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(VALIDATION_RUN_SCHEMA.empty_table(), path)
    return path


def write_validation_runs(runs_dir: Path, runs: Iterable[ValidationRun], *, writer_id: str = "sandbox") -> list[Path]:
    """Append ``runs`` as one new file per UTC date of ``started_at``; return the files written."""
    runs_dir = Path(runs_dir)
    ensure_schema_file(runs_dir)
    by_date: dict[str, list[ValidationRun]] = defaultdict(list)
    for run in runs:
        by_date[f"{run.started_at.astimezone(UTC):%Y-%m-%d}"].append(run)
    written = []
    for date, batch in sorted(by_date.items()):
        folder = runs_dir / f"date={date}"
        folder.mkdir(parents=True, exist_ok=True)
        rows = [{"schema_version": SCHEMA_VERSION, **asdict(run)} for run in batch]
        table = pa.Table.from_pylist(rows, schema=VALIDATION_RUN_SCHEMA)
        path = folder / f"runs-{writer_id}-{_next_seq(folder, writer_id)}.parquet"
        _atomic_write(table, path)
        written.append(path)
    return written


def synthetic_validation_runs(
    customers: Iterable[str], start: datetime, *, hours: int = 24, per_customer: int = 3, seed: int = 0
) -> list[ValidationRun]:
    """A few plausible runs per customer: policy replays on CPU, Terraform plans, a GPU eval now and then."""
    rng = np.random.default_rng(seed)
    kinds = (
        ("routing_policy:v{n}", "c7i.large", 2, 0),
        ("terraform:plan-{h}", "m7i.xlarge", 4, 0),
        ("cache_threshold:v{n}", "g5.xlarge", 4, 1),
        ("routing_policy:v{n}", "g6.xlarge", 4, 1),
    )
    runs = []
    for customer in customers:
        for _ in range(per_customer):
            label, instance, cores, gpus = kinds[int(rng.integers(0, len(kinds)))]
            began = start + timedelta(seconds=int(rng.integers(0, max(1, hours * 3600 - 7200))))
            runs.append(
                ValidationRun(
                    run_id=uuid.UUID(bytes=rng.bytes(16), version=4).hex,
                    customer_id=customer,
                    started_at=began,
                    ended_at=began
                    + timedelta(seconds=int(rng.integers(60, 5400)), microseconds=int(rng.integers(0, 10**6))),
                    cpu_cores=cores,
                    gpus=gpus,
                    instance_type=instance,
                    validated=label.format(n=int(rng.integers(1, 9)), h=rng.bytes(6).hex()),
                    outcome=str(rng.choice(OUTCOMES, p=[0.8, 0.15, 0.05])),
                )
            )
    return runs


def _atomic_write(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _next_seq(folder: Path, writer_id: str) -> int:
    prefix = f"runs-{writer_id}-"
    seqs = [int(p.stem[len(prefix) :]) for p in folder.glob(f"{prefix}*.parquet") if p.stem[len(prefix) :].isdigit()]
    return max(seqs, default=-1) + 1
