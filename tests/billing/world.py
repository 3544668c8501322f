"""A demo-like billing world for tests: raw event and validation-run Parquet files, and a warehouse whose
``invoices`` / ``invoice_lines`` / ``invoice_line_events`` tables follow the marts' contract.

The tables are built with SQL from the *claimed* savings on the events (as dbt does), never with the proof's
Python code, so the proof tests compare two independent derivations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from contracts.events import EVENT_SCHEMA, empty_event
from contracts.pricing import ModelPrice, PriceTable

PRICE_VERSION = "litellm-fixture-0123456789ab"
FIXTURE_PRICES = PriceTable(
    {
        "gpt-4o": ModelPrice(2.5e-6, 10e-6, 1.25e-6),
        "gpt-4o-mini": ModelPrice(0.15e-6, 0.6e-6, 0.075e-6),
        "claude-sonnet-4-5": ModelPrice(3e-6, 15e-6, 0.3e-6),
    },
    PRICE_VERSION,
)
STRIPE_CUSTOMERS = {"cust_acme": "cus_acme0001", "cust_globex": "cus_globex001", "cust_initech": None}
FEE_RATES = {"cust_acme": 0.20, "cust_globex": 0.15, "cust_initech": 0.20}
DAYS_UNTIL_DUE = {"cust_acme": 30, "cust_globex": 15, "cust_initech": 30}
SEED_CSV = "instance_type,vcpus,gpus,gpu_type,hourly_usd,region,source\nm7i.large,2,0,,0.1008,us-east-1,t\n"
PERIOD = "2026-11"


@dataclass(frozen=True)
class World:
    root: Path
    events_dir: Path
    runs_dir: Path
    warehouse: Path
    seed: Path
    ledger: Path


def _event(i: int, customer: str, ts: datetime, kind: str, tokens: tuple[int, int, int]) -> dict[str, Any]:
    prompt, completion, cached = tokens
    ev = empty_event()
    requested = "claude-sonnet-4-5" if i % 3 == 0 else "gpt-4o"
    served = {"cache": requested, "routing": "gpt-4o-mini", "compression": requested}[kind]
    baseline = FIXTURE_PRICES.price(requested, prompt, completion, cached).cost_usd
    served_cost = FIXTURE_PRICES.price(served, prompt, completion, cached).cost_usd
    assert baseline is not None and served_cost is not None
    price = FIXTURE_PRICES.lookup(served)
    assert price is not None
    ev.update(
        event_id=f"ev{i:05d}",
        request_id=f"req{i:05d}",
        gateway_id="test",
        customer_id=customer,
        ts_start=ts,
        ts_end=ts + timedelta(seconds=1),
        endpoint="/v1/chat/completions",
        requested_model=requested,
        served_model=served,
        is_stream=False,
        is_simulated=False,
        http_status=200,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        total_tokens=prompt + completion,
        usage_source="provider",
        price_status="priced",
        price_table_version=PRICE_VERSION,
        input_cost_per_token=price.input_cost_per_token,
        output_cost_per_token=price.output_cost_per_token,
        cache_read_cost_per_token=price.cache_read_cost_per_token,
        baseline_cost_usd=baseline,
        cost_usd=0.0 if kind == "cache" else served_cost,
    )
    if kind == "cache":
        ev.update(cache_status="hit_exact", savings_cache_usd=baseline)
    elif kind == "routing":
        ev.update(cache_status="miss", savings_routing_usd=baseline - served_cost)
    else:
        saved = 4000 + 13 * (i % 7)
        ev.update(
            cache_status="miss",
            compression_tokens_saved=saved,
            savings_compression_usd=saved * price.input_cost_per_token,
        )
    return ev


def write_events(events_dir: Path, n: int = 240) -> None:
    """``n`` events over the three customers and levers, most in November 2026, some in October."""
    rows = []
    kinds = ("cache", "routing", "compression")
    customers = tuple(STRIPE_CUSTOMERS)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(n):
        ts = start + timedelta(hours=3 * i + 1, seconds=i) - (timedelta(days=20) if i % 10 == 9 else timedelta(0))
        tokens = (3000 + 370 * (i % 29), 500 + 110 * (i % 17), (i % 5) * 200)
        rows.append(_event(i, customers[i % 3], ts, kinds[(i // 3) % 3], tokens))
    table = pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)
    for day in sorted({r["ts_start"].date() for r in rows}):
        mask = [r["ts_start"].date() == day for r in rows]
        part = events_dir / f"date={day.isoformat()}" / "hour=00"
        part.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.filter(pa.array(mask)), part / "events-test-000001.parquet")
    pq.write_table(EVENT_SCHEMA.empty_table(), events_dir / "_schema_v1.parquet")


RUN_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("schema_version", pa.int16()),
        ("customer_id", pa.string()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("ended_at", pa.timestamp("us", tz="UTC")),
        ("cpu_cores", pa.int32()),
        ("gpus", pa.int32()),
        ("instance_type", pa.string()),
        ("validated", pa.string()),
        ("outcome", pa.string()),
    ]
)


def write_runs(runs_dir: Path, *, unpriced_customer: str | None = None) -> None:
    t0 = datetime(2026, 11, 5, 10, tzinfo=UTC)
    runs = [
        ("run_a1", "cust_acme", t0, t0 + timedelta(hours=1, minutes=10, seconds=3, microseconds=500_000), "m7i.large"),
        ("run_a2", "cust_acme", t0 + timedelta(days=3), t0 + timedelta(days=3, minutes=47), "m7i.large"),
        ("run_g1", "cust_globex", t0, t0 + timedelta(hours=2, seconds=1), "m7i.large"),
    ]
    if unpriced_customer:
        runs.append(("run_x1", unpriced_customer, t0, t0 + timedelta(hours=1), "x9.mystery"))
    rows = [
        {
            "run_id": r[0],
            "schema_version": 1,
            "customer_id": r[1],
            "started_at": r[2],
            "ended_at": r[3],
            "cpu_cores": 2,
            "gpus": 0,
            "instance_type": r[4],
            "validated": "routing_policy",
            "outcome": "passed",
        }
        for r in runs
    ]
    part = runs_dir / "date=2026-11-05"
    part.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=RUN_SCHEMA), part / "runs-000001.parquet")


_MARTS_SQL = """
set TimeZone = 'UTC';
create table contracts as
    select * from (values {contracts}) t(customer_id, fee_rate, stripe_customer_id, days_until_due);
create table prices as select * from read_csv('{seed}', header = true);
create table ev as select * from read_parquet('{events}/**/*.parquet');
create table claims as
    select event_id, customer_id, strftime(ts_start, '%Y-%m') as billing_period, 'cache' as lever,
           savings_cache_usd as savings from ev where savings_cache_usd is not null
    union all
    select event_id, customer_id, strftime(ts_start, '%Y-%m'), 'routing', savings_routing_usd
    from ev where savings_routing_usd is not null
    union all
    select event_id, customer_id, strftime(ts_start, '%Y-%m'), 'compression', savings_compression_usd
    from ev where savings_compression_usd is not null;
create table vbp as
    select sha256(concat_ws('|', 'vbp', c.customer_id, billing_period, lever)) as line_id,
           sha256(concat_ws('|', 'inv', c.customer_id, billing_period)) as invoice_id,
           c.customer_id, billing_period, lever, sum(savings) as verified_savings_usd,
           any_value(k.fee_rate) as fee_rate,
           count(*) as event_count, sha256(string_agg(event_id, ',' order by event_id)) as proof_hash
    from claims c join contracts k using (customer_id) group by all;
create table runs as select * from read_parquet('{runs}/**/*.parquet');
create table bvm as
    select sha256(concat_ws('|', 'bvm', run_id)) as line_id,
           sha256(concat_ws('|', 'inv', r.customer_id, strftime(started_at, '%Y-%m'))) as invoice_id,
           r.customer_id, strftime(started_at, '%Y-%m') as billing_period, run_id,
           ceil(greatest(epoch_ms(ended_at) - epoch_ms(started_at), 0) / 1000.0)::bigint * p.hourly_usd / 3600.0
               as base_cost_usd,
           p.hourly_usd is not null as priced
    from runs r left join prices p using (instance_type);
create table invoice_lines as
    select line_id, invoice_id, customer_id, billing_period, 'vbp' as line_type, lever,
           'VBP ' || lever || ' savings' as description,
           case when verified_savings_usd > 0
                then cast(round(cast(verified_savings_usd * fee_rate as decimal(38, 12)) * 100, 0) as bigint)
                else 0::bigint end as amount_cents,
           'usd' as currency, verified_savings_usd, fee_rate, null::double as base_cost_usd,
           case when verified_savings_usd > 0 then 'billable' else 'zero_negative_savings' end as status,
           null::varchar as status_reason, event_count, proof_hash
    from vbp
    union all
    select line_id, invoice_id, customer_id, billing_period, 'bvm', null, 'Validation run ' || run_id,
           case when priced then cast(round(cast(base_cost_usd * 1.5 as decimal(38, 12)) * 100, 0) as bigint)
                else 0::bigint end,
           'usd', null, null, base_cost_usd,
           case when priced then 'billable' else 'blocked_unknown_price' end,
           case when not priced then 'instance type has no price in cloud_instance_prices' end,
           1::bigint, sha256(run_id)
    from bvm;
create table invoice_line_events as
    select v.line_id, 'event' as source_kind, c.event_id as source_id, c.lever, c.savings as savings_usd
    from claims c join vbp v using (customer_id, billing_period, lever)
    union all
    select line_id, 'validation_run', run_id, null, null from bvm;
create table invoices as
    select invoice_id, l.customer_id, billing_period,
           cast(billing_period || '-01' as date) as period_start,
           last_day(cast(billing_period || '-01' as date)) as period_end, 'usd' as currency,
           coalesce(sum(amount_cents) filter (where status = 'billable'), 0)::bigint as total_cents,
           count(*)::integer as line_count, any_value(k.stripe_customer_id) as stripe_customer_id,
           any_value(k.days_until_due)::integer as days_until_due,
           case when count(*) filter (where status = 'blocked_unknown_price') > 0 then 'blocked'
                when any_value(k.stripe_customer_id) is null then 'no_stripe_mapping' else 'ready' end as status
    from invoice_lines l join contracts k using (customer_id) group by all;
drop table contracts; drop table prices; drop table ev; drop table claims; drop table vbp; drop table runs;
drop table bvm;
"""


def build_marts(world: World) -> None:
    contracts = ", ".join(
        f"('{c}', {FEE_RATES[c]}::double, {('NULL' if s is None else repr(s))}, {DAYS_UNTIL_DUE[c]})"
        for c, s in STRIPE_CUSTOMERS.items()
    )
    world.warehouse.unlink(missing_ok=True)
    con = duckdb.connect(str(world.warehouse))
    try:
        con.execute(
            _MARTS_SQL.format(contracts=contracts, seed=world.seed, events=world.events_dir, runs=world.runs_dir)
        )
    finally:
        con.close()


def make_world(root: Path, *, unpriced_customer: str | None = None) -> World:
    data = root / "data"
    world = World(
        root=root,
        events_dir=data / "events",
        runs_dir=data / "validation_runs",
        warehouse=data / "warehouse.duckdb",
        seed=root / "cloud_instance_prices.csv",
        ledger=data / "billing.db",
    )
    world.events_dir.mkdir(parents=True)
    world.runs_dir.mkdir(parents=True)
    world.seed.write_text(SEED_CSV)
    write_events(world.events_dir)
    write_runs(world.runs_dir, unpriced_customer=unpriced_customer)
    build_marts(world)
    return world


def execute(warehouse: Path, sql: str) -> None:
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(sql)
    finally:
        con.close()
