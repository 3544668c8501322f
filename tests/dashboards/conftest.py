"""Dashboard test fixtures: isolated settings, and small real DuckDB warehouses shaped like dbt's marts."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest
import streamlit as st

APP_PATH = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"

# main.fct_llm_spend's columns in the dbt model's order, with the types dbt builds (times are naive UTC).
FCT_COLUMNS: dict[str, str] = {
    "event_id": "varchar",
    "request_id": "varchar",
    "ts_start": "timestamp",
    "ts_end": "timestamp",
    "event_date": "date",
    "event_hour": "timestamp",
    "customer_id": "varchar",
    "team_id": "varchar",
    "key_id": "varchar",
    "end_user": "varchar",
    "feature": "varchar",
    "endpoint": "varchar",
    "requested_model": "varchar",
    "served_model": "varchar",
    "provider": "varchar",
    "provider_kind": "varchar",
    "is_stream": "boolean",
    "is_simulated": "boolean",
    "http_status": "integer",
    "is_error": "boolean",
    "error_type": "varchar",
    "prompt_tokens": "bigint",
    "completion_tokens": "bigint",
    "cached_tokens": "bigint",
    "total_tokens": "bigint",
    "usage_source": "varchar",
    "cost_usd": "double",
    "baseline_cost_usd": "double",
    "savings_usd": "double",
    "price_status": "varchar",
    "price_table_version": "varchar",
    "latency_ms": "double",
    "ttft_ms": "double",
    "gateway_overhead_ms": "double",
    "cache_status": "varchar",
    "is_cache_hit": "boolean",
}

# main.agg_user_metrics_hourly, derived as dbt/models/marts/agg_user_metrics_hourly.sql derives it.
AGG_SQL = """
create table main.agg_user_metrics_hourly as
select
    event_hour                                                  as hour,
    customer_id,
    coalesce(end_user, '(anonymous)')                          as end_user,
    count(*)::bigint                                            as requests,
    count(*) filter (where is_error)::bigint                    as error_requests,
    coalesce(sum(prompt_tokens), 0)                             as prompt_tokens,
    coalesce(sum(completion_tokens), 0)                         as completion_tokens,
    coalesce(sum(total_tokens), 0)                              as total_tokens,
    coalesce(sum(cost_usd), 0)                                  as cost_usd,
    coalesce(sum(baseline_cost_usd), 0)                         as baseline_cost_usd,
    sum(savings_usd)                                            as savings_usd,
    count(*) filter (where is_cache_hit)::bigint                as cache_hits,
    count(*) filter (where is_cache_hit) / count(*)             as cache_hit_rate,
    count(*) filter (where price_status = 'unknown')::bigint    as unpriced_requests,
    count(*) filter (where is_simulated)::bigint                as simulated_requests
from main.fct_llm_spend
group by 1, 2, 3
"""


def spend_row(
    n: int,
    at: str,
    *,
    customer: str = "acme",
    user: str | None = "alice",
    model: str = "gpt-4o",
    provider: str = "openai",
    cost: float | None = 1.0,
    savings: float | None = 0.0,
    price_status: str | None = None,
    is_error: bool = False,
    is_simulated: bool = False,
) -> dict[str, Any]:
    """One request of ``fct_llm_spend``; ``at`` is its UTC start time, e.g. ``"2025-03-01 10:15"``."""
    start = dt.datetime.fromisoformat(at)
    status = price_status or ("unknown" if cost is None else "priced")
    return {
        "event_id": f"evt-{n}",
        "request_id": f"req-{n}",
        "ts_start": start,
        "ts_end": start + dt.timedelta(milliseconds=800),
        "event_date": start.date(),
        "event_hour": start.replace(minute=0, second=0, microsecond=0),
        "customer_id": customer,
        "team_id": f"{customer}-team",
        "key_id": f"key-{customer}",
        "end_user": user,
        "feature": "chat",
        "endpoint": "/v1/chat/completions",
        "requested_model": model,
        "served_model": model,
        "provider": provider,
        "provider_kind": "simulated" if is_simulated else "openai",
        "is_stream": False,
        "is_simulated": is_simulated,
        "http_status": 500 if is_error else 200,
        "is_error": is_error,
        "error_type": "upstream_error" if is_error else None,
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "cached_tokens": 0,
        "total_tokens": 150,
        "usage_source": "provider",
        "cost_usd": cost,
        "baseline_cost_usd": None if cost is None else cost + (savings or 0.0),
        "savings_usd": savings,
        "price_status": status,
        "price_table_version": "test-1",
        "latency_ms": 800.0,
        "ttft_ms": 120.0,
        "gateway_overhead_ms": 1.5,
        "cache_status": "hit" if (savings or 0) > 0 else "miss",
        "is_cache_hit": (savings or 0) > 0,
    }


# A small, hand-checkable history: two customers, five days, one error. Totals:
# spend 1.25 + 0.50 + 3.00 + 0.00 + 0.75 = 5.50, savings 0.25 + 0.50 + 1.25 = 2.00, 1 error in 5.
SAMPLE_ROWS = [
    spend_row(1, "2025-03-01 10:15", user="alice", model="gpt-4o", cost=1.25, savings=0.25),
    spend_row(2, "2025-03-02 11:30", user="bob", model="gpt-4o-mini", cost=0.50, savings=0.50),
    spend_row(
        3,
        "2025-03-03 12:00",
        customer="globex",
        user="carol",
        model="claude-sonnet-4-5",
        provider="anthropic",
        cost=3.00,
        savings=0.0,
    ),
    spend_row(
        4,
        "2025-03-03 12:45",
        customer="globex",
        user="carol",
        model="claude-sonnet-4-5",
        provider="anthropic",
        cost=0.0,
        savings=0.0,
        price_status="no_usage",
        is_error=True,
    ),
    spend_row(5, "2025-03-05 09:00", user="alice", model="gpt-4o", cost=0.75, savings=1.25),
]

WarehouseFactory = Callable[..., Path]


def build_warehouse(path: Path, rows: Sequence[dict[str, Any]], *, with_agg: bool = True) -> Path:
    columns = ", ".join(f"{name} {kind}" for name, kind in FCT_COLUMNS.items())
    con = duckdb.connect(str(path))
    try:
        con.execute(f"create table main.fct_llm_spend ({columns})")
        if rows:
            names = list(FCT_COLUMNS)
            con.executemany(
                f"insert into main.fct_llm_spend ({', '.join(names)}) values ({', '.join('?' * len(names))})",
                [[row[n] for n in names] for row in rows],
            )
        if with_agg:
            con.execute(AGG_SQL)
    finally:
        con.close()
    return path


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run each test in its own directory with no Apex settings from the outside, and a cold cache."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("APEX_")]:
        monkeypatch.delenv(name)
    st.cache_data.clear()
    yield
    st.cache_data.clear()


@pytest.fixture
def make_warehouse(tmp_path: Path) -> WarehouseFactory:
    """Build ``tmp_path/<name>.duckdb`` holding ``rows``, and (unless ``with_agg=False``) the aggregate."""

    def make(rows: Sequence[dict[str, Any]] = SAMPLE_ROWS, *, name: str = "warehouse", with_agg: bool = True) -> Path:
        return build_warehouse(tmp_path / f"{name}.duckdb", rows, with_agg=with_agg)

    return make


@pytest.fixture
def sample_warehouse(make_warehouse: WarehouseFactory) -> Path:
    return make_warehouse()


@pytest.fixture
def row() -> Callable[..., dict[str, Any]]:
    """The ``spend_row`` factory, for tests that need their own requests."""
    return spend_row


@pytest.fixture
def app_path() -> Path:
    return APP_PATH


@contextmanager
def _held_write_lock(path: Path) -> Iterator[None]:
    """Another process holding a read-write connection to ``path``, as a running dbt build does."""
    code = (
        "import duckdb, sys\n"
        f"con = duckdb.connect({str(path)!r})\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"  # hold the lock until the test closes our stdin
    )
    with subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "locked"
            yield
        finally:
            proc.stdin.close()
            proc.wait(timeout=10)


@pytest.fixture
def write_lock() -> Callable[[Path], Any]:
    return _held_write_lock
