"""Re-derive an invoice line from the raw Parquet files alone, so a customer (or we) can check any charge.

The marts give only the line and the ids behind it (``invoice_line_events``). Everything else is recomputed:

    VBP  events loaded from ``<events dir>/**/*.parquet``; tokens re-priced with the price table whose version
         each event recorded; verified savings per event by lever —
           cache        the baseline (requested) model's cost for the event's tokens
           routing      baseline cost − served model's cost, same tokens
           compression  compression_tokens_saved × the served model's input price
         summed, × the line's fee rate, rounded half-up to cents.
    BVM  validation runs from ``<data dir>/validation_runs/**/*.parquet`` (latest copy of a run id): run time in
         whole seconds, rounded up, × the instance type's hourly list price (seed ``cloud_instance_prices.csv``)
         / 3600 = compute cost; × 1.5, rounded half-up to cents.

The proof hash is sha256 of the sorted source ids joined by ','; it is recomputed from the ids found.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from contracts.event_files import list_event_files
from contracts.events import EVENT_SCHEMA
from contracts.pricing import PriceTable
from dagster_project.billing.errors import BillingError
from dagster_project.billing.marts import connect_marts, fetch_dicts

__all__ = ["BVM_MARKUP", "LineProof", "cents_half_up", "proof_hash", "prove_lines", "read_instance_prices"]

BVM_MARKUP = 1.5
_EVENT_COLUMNS = (
    "event_id",
    "customer_id",
    "ts_start",
    "requested_model",
    "served_model",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "compression_tokens_saved",
    "price_table_version",
)
_CACHE_HITS = ("hit_exact", "hit_semantic")


@dataclass
class LineProof:
    line_id: str
    line_type: str
    lever: str | None
    customer_id: str
    billing_period: str
    expected_cents: int
    expected_hash: str
    expected_usd: float | None
    """The line's verified savings (VBP) or compute cost (BVM), as the marts state it."""
    recomputed_cents: int | None = None
    recomputed_hash: str | None = None
    recomputed_usd: float | None = None
    sources: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return (
            not self.problems
            and self.recomputed_cents == self.expected_cents
            and self.recomputed_hash == self.expected_hash
        )

    def mismatch_reasons(self) -> list[str]:
        reasons = list(self.problems)
        if self.recomputed_cents is not None and self.recomputed_cents != self.expected_cents:
            reasons.append(f"amount: line says {self.expected_cents} cents, recomputed {self.recomputed_cents}")
        if self.recomputed_hash is not None and self.recomputed_hash != self.expected_hash:
            reasons.append("proof_hash: the line's hash differs from the hash of its source ids")
        return reasons


def proof_hash(source_ids: Iterable[str]) -> str:
    return hashlib.sha256(",".join(sorted(source_ids)).encode()).hexdigest()


def cents_half_up(usd: float) -> int:
    """USD → integer cents like the marts' ``usd_to_cents``: fix to 12 decimals, then round half-up."""
    fixed = Decimal(repr(usd)).quantize(Decimal("1e-12"), rounding=ROUND_HALF_UP)
    return int((fixed * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def read_instance_prices(path: Path) -> dict[str, float]:
    with Path(path).open(newline="") as f:
        return {row["instance_type"]: float(row["hourly_usd"]) for row in csv.DictReader(f)}


def prove_lines(
    warehouse: Path,
    events_dir: Path,
    line_ids: Iterable[str] | None = None,
    *,
    period: str | None = None,
    price_tables: Iterable[PriceTable] | None = None,
    baseline_model: Callable[[str], str] | None = None,
    validation_runs_dir: Path | None = None,
    instance_prices: Path | None = None,
) -> list[LineProof]:
    """Proofs of the given lines (or every line of ``period``), in line-id order.

    ``price_tables`` defaults to the installed litellm table; ``baseline_model`` maps a requested model name to
    its price-table name (the gateway's route aliases; default: the name itself)."""
    tables = {t.version: t for t in (price_tables if price_tables is not None else [PriceTable.from_litellm()])}
    to_price_name = baseline_model or (lambda name: name)
    with connect_marts(warehouse) as con:
        if line_ids is not None:
            ids = sorted(set(line_ids))
            lines = fetch_dicts(con, "select * from main.invoice_lines where list_contains(?, line_id)", [ids])
            unknown = sorted(set(ids) - {ln["line_id"] for ln in lines})
            if unknown:
                raise BillingError(f"no invoice line with id {', '.join(unknown)}")
        elif period is not None:
            lines = fetch_dicts(con, "select * from main.invoice_lines where billing_period = ?", [period])
        else:
            raise ValueError("give line_ids or period")
        wanted = [ln["line_id"] for ln in lines]
        sources = fetch_dicts(
            con,
            "select line_id, source_kind, source_id from main.invoice_line_events where list_contains(?, line_id)",
            [wanted],
        )
    by_line: dict[str, list[dict[str, Any]]] = {}
    for s in sources:
        by_line.setdefault(s["line_id"], []).append(s)

    event_ids = {s["source_id"] for s in sources if s["source_kind"] == "event"}
    run_ids = {s["source_id"] for s in sources if s["source_kind"] == "validation_run"}
    events = _load_by_id(list_event_files(Path(events_dir)), "event_id", event_ids, _event_schema())
    runs: dict[str, dict[str, Any]] = {}
    prices: dict[str, float] = {}
    if run_ids:
        if validation_runs_dir is None or instance_prices is None:
            raise ValueError("BVM lines need validation_runs_dir and instance_prices")
        runs = _load_by_id(_parquet_files(validation_runs_dir), "run_id", run_ids, None, latest="ended_at")
        prices = read_instance_prices(instance_prices)

    proofs = []
    for line in sorted(lines, key=lambda ln: ln["line_id"]):
        proof = LineProof(
            line_id=line["line_id"],
            line_type=line["line_type"],
            lever=line["lever"],
            customer_id=line["customer_id"],
            billing_period=line["billing_period"],
            expected_cents=int(line["amount_cents"]),
            expected_hash=line["proof_hash"],
            expected_usd=line["verified_savings_usd"] if line["line_type"] == "vbp" else line["base_cost_usd"],
        )
        line_sources = by_line.get(line["line_id"], [])
        proof.sources = len(line_sources)
        proof.recomputed_hash = proof_hash(s["source_id"] for s in line_sources)
        if line["line_type"] == "vbp":
            _prove_vbp(proof, line, line_sources, events, tables, to_price_name)
        elif line["line_type"] == "bvm":
            _prove_bvm(proof, line, line_sources, runs, prices)
        else:
            proof.problems.append(f"unknown line_type {line['line_type']!r}")
        proofs.append(proof)
    return proofs


def _event_schema() -> pa.Schema:
    return pa.schema([EVENT_SCHEMA.field(c) for c in (*_EVENT_COLUMNS, "cache_status", "baseline_model")])


def _parquet_files(root: Path) -> list[Path]:
    return sorted(Path(root).glob("**/*.parquet")) if Path(root).is_dir() else []


def _load_by_id(
    files: list[Path], id_column: str, ids: set[str], schema: pa.Schema | None, latest: str | None = None
) -> dict[str, Any]:
    """Rows whose ``id_column`` is in ``ids``; of duplicates (replayed spills, rewritten runs) the first wins, or
    the one with the greatest ``latest`` column."""
    if not ids or not files:
        return {}
    dataset = ds.dataset([str(f) for f in files], format="parquet", schema=schema)
    table = dataset.to_table(filter=pc.field(id_column).isin(pa.array(sorted(ids), pa.string())))
    found: dict[str, Any] = {}
    for row in table.to_pylist():
        seen = found.get(row[id_column])
        if seen is None or (latest is not None and row[latest] > seen[latest]):
            found[row[id_column]] = row
    return found


def _period_of(ts: Any) -> str:
    return f"{ts.year:04d}-{ts.month:02d}"


def _prove_vbp(
    proof: LineProof,
    line: Mapping[str, Any],
    sources: list[dict[str, Any]],
    events: Mapping[str, dict[str, Any]],
    tables: Mapping[str, PriceTable],
    to_price_name: Callable[[str], str],
) -> None:
    lever = line["lever"]
    if lever not in ("cache", "routing", "compression"):
        proof.problems.append(f"lever {lever!r} is not derived from gateway events; no event proof for it")
        return
    per_event: list[float] = []
    needed_versions: set[str] = set()
    unknown_price: list[str] = []
    for source in sources:
        if source["source_kind"] != "event":
            proof.problems.append(f"source {source['source_id']} is a {source['source_kind']}, not an event")
            continue
        ev = events.get(source["source_id"])
        if ev is None:
            proof.problems.append(f"event {source['source_id']} is not in any Parquet file")
            continue
        if ev["customer_id"] != proof.customer_id:
            proof.problems.append(f"event {ev['event_id']} belongs to {ev['customer_id']}, not {proof.customer_id}")
        if _period_of(ev["ts_start"]) != proof.billing_period:
            proof.problems.append(f"event {ev['event_id']} is from {_period_of(ev['ts_start'])}, not the period")
        table = tables.get(ev["price_table_version"] or "")
        if table is None and line["status"] == "blocked_unknown_price" and ev["price_table_version"] is None:
            unknown_price.append(ev["event_id"])
            continue
        if table is None:
            needed_versions.add(str(ev["price_table_version"]))
            continue
        savings = _event_savings(lever, ev, table, to_price_name)
        if isinstance(savings, _UnknownPrice):
            unknown_price.append(ev["event_id"])
        elif isinstance(savings, str):
            proof.problems.append(savings)
        else:
            per_event.append(savings)
    if needed_versions:
        proof.problems.append(
            f"price table version(s) {', '.join(sorted(needed_versions))} needed; installed: "
            f"{', '.join(sorted(tables))}"
        )
        return
    if line["status"] == "blocked_unknown_price":
        # nothing is billed; the proof confirms the block: some source event has a price the table lacks
        if unknown_price and not proof.problems:
            proof.recomputed_cents = 0
            proof.notes.append(f"blocked as stated: {len(unknown_price)} event(s) with no list price")
        else:
            proof.problems.append("line is blocked_unknown_price but every source event has a list price")
        return
    if unknown_price:
        proof.problems.append(f"{len(unknown_price)} event(s) have no list price, e.g. {unknown_price[0]}")
        return
    total = math.fsum(per_event)
    proof.recomputed_usd = total
    fee_rate = line["fee_rate"]
    if fee_rate is None:
        proof.problems.append("line has no fee_rate")
        return
    proof.recomputed_cents = cents_half_up(max(total, 0.0) * float(fee_rate))
    if proof.expected_usd is not None and not _close(total, proof.expected_usd):
        proof.problems.append(f"verified savings: line says {proof.expected_usd!r} USD, recomputed {total!r}")


class _UnknownPrice(str):
    """A model missing from the price table (what blocks a line), as opposed to other problems."""


def _event_savings(
    lever: str, ev: Mapping[str, Any], table: PriceTable, to_price_name: Callable[[str], str]
) -> float | str:
    prompt, completion, cached = (ev["prompt_tokens"] or 0), (ev["completion_tokens"] or 0), (ev["cached_tokens"] or 0)
    written = ev.get("cache_write_tokens") or 0
    requested, served = ev["requested_model"], ev["served_model"]
    if lever == "compression":
        price = table.lookup(served)
        if price is None:
            return _UnknownPrice(f"event {ev['event_id']}: served model {served!r} not in {table.version}")
        return (ev["compression_tokens_saved"] or 0) * price.input_cost_per_token
    # v2 events name the baseline's price-table model (an ``apex/auto`` request is measured against the strong
    # model); v1 events are mapped through the gateway's routes
    baseline_name = ev.get("baseline_model") or (to_price_name(requested) if requested else requested)
    baseline = table.price(baseline_name, prompt, completion, cached, written)
    if baseline.cost_usd is None:
        return _UnknownPrice(f"event {ev['event_id']}: baseline model {baseline_name!r} not in {table.version}")
    if lever == "cache":
        return baseline.cost_usd
    served_cost = table.price(served, prompt, completion, cached, written)
    if served_cost.cost_usd is None:
        return _UnknownPrice(f"event {ev['event_id']}: served model {served!r} not in {table.version}")
    return baseline.cost_usd - served_cost.cost_usd


def _run_seconds(run: Mapping[str, Any]) -> int:
    """Whole seconds, rounded up, as the marts prorate (``ceil(ms(ended) - ms(started)) / 1000``)."""
    ms = (run["ended_at"] - run["started_at"]) // timedelta(milliseconds=1)
    return math.ceil(max(ms, 0) / 1000)


def _prove_bvm(
    proof: LineProof,
    line: Mapping[str, Any],
    sources: list[dict[str, Any]],
    runs: Mapping[str, dict[str, Any]],
    prices: Mapping[str, float],
) -> None:
    costs: list[float] = []
    unpriced: list[str] = []
    for source in sources:
        run = runs.get(source["source_id"])
        if source["source_kind"] != "validation_run" or run is None:
            proof.problems.append(f"validation run {source['source_id']} is not in any Parquet file")
            continue
        if run["customer_id"] != proof.customer_id:
            proof.problems.append(f"run {run['run_id']} belongs to {run['customer_id']}, not {proof.customer_id}")
        if _period_of(run["started_at"]) != proof.billing_period:
            proof.problems.append(f"run {run['run_id']} started in {_period_of(run['started_at'])}, not the period")
        hourly = prices.get(run["instance_type"])
        if hourly is None:
            unpriced.append(f"run {run['run_id']}: instance type {run['instance_type']!r} has no list price")
            continue
        costs.append(_run_seconds(run) * hourly / 3600.0)
    if line["status"] == "blocked_unknown_price":
        if unpriced and not proof.problems:
            proof.recomputed_cents = 0
            proof.notes.append(f"blocked as stated: {'; '.join(unpriced)}")
        else:
            proof.problems.append("line is blocked_unknown_price but every run's instance type has a list price")
        return
    proof.problems.extend(unpriced)
    total = math.fsum(costs)
    proof.recomputed_usd = total
    proof.recomputed_cents = cents_half_up(total * BVM_MARKUP)
    if proof.expected_usd is not None and not _close(total, proof.expected_usd):
        proof.problems.append(f"compute cost: line says {proof.expected_usd!r} USD, recomputed {total!r}")


def _close(a: float, b: float) -> bool:
    """The marts' own re-derivation tolerance: claims within 1e-9 + 1e-6 relative are the same amount."""
    return abs(a - b) <= 1e-9 + 1e-6 * abs(b)
