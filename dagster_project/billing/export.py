"""Invoice export files for one billing period, written from the dbt-built billing marts.

One file per table and format, named ``<table>-<period>.<ext>`` (``invoices-2026-11.csv``,
``invoice_lines-2026-11.parquet``, ``invoice_line_events-2026-11.json``): the same inputs always give the same
names and the same bytes (rows in id order, JSON with sorted keys, dates as ISO strings). Refuses when the
period has no invoices or the latest blocking billing check failed.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from dagster_project.billing.checks import require_checks_passed
from dagster_project.billing.marts import BILLING_TABLES, connect_marts, parse_period, period_tables

__all__ = ["EXPORT_FORMATS", "ExportResult", "export_file_name", "export_period"]

ExportFormat = Literal["csv", "parquet", "json"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "parquet", "json")


@dataclass(frozen=True)
class ExportResult:
    period: str
    files: dict[str, Path]
    rows: dict[str, int]


def export_file_name(table: str, period: str, fmt: str) -> str:
    return f"{table}-{period}.{fmt}"


def export_period(
    warehouse: Path,
    ledger: Path,
    period: str,
    out_dir: Path,
    formats: Iterable[ExportFormat] = ("csv",),
) -> ExportResult:
    parse_period(period)
    formats = tuple(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}; use one of {', '.join(EXPORT_FORMATS)}")
    with connect_marts(warehouse) as con:
        tables = period_tables(con, period)
    require_checks_passed(warehouse, ledger)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for name in BILLING_TABLES:
        for fmt in formats:
            path = out_dir / export_file_name(name, period, fmt)
            _atomic_write(path, _encode(tables[name], fmt))
            files[f"{name}.{fmt}"] = path
    return ExportResult(period, files, {name: tables[name].num_rows for name in BILLING_TABLES})


def _encode(table: pa.Table, fmt: str) -> bytes:
    if fmt == "parquet":
        sink = pa.BufferOutputStream()
        # no created_by/timestamps differ between runs: pyarrow writes none, so equal tables give equal bytes
        pq.write_table(table, sink, compression="zstd")
        return sink.getvalue().to_pybytes()
    rows = table.to_pylist()
    if fmt == "json":
        # orjson writes dates as ISO strings and doubles as their shortest round-trip text
        return orjson.dumps(rows, default=_json_default, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.column_names)
    for r in rows:
        writer.writerow(["" if v is None else _csv_text(v) for v in r.values()])
    return buf.getvalue().encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):  # a DECIMAL column: JSON has one number type
        return float(value)
    raise TypeError(f"cannot export {type(value).__name__} to JSON")


def _csv_text(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)  # shortest round-trip text: the exported number is exactly the stored double
    return str(value)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
