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
import jinja2
import pytest
import streamlit as st

REPO = Path(__file__).resolve().parents[2]
APP_PATH = REPO / "dashboards" / "app.py"
DBT_MARTS = REPO / "dbt" / "models" / "marts"
OPTIMIZER_MARTS = (
    "agg_savings_by_lever_daily",
    "agg_cache_outcomes_daily",
    "agg_cache_similarity_daily",
    "agg_routing_tiers_daily",
    "agg_compression_daily",
)
"""The daily marts the Optimizers tab reads, built here from the dbt models' own SQL."""

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
    "cache_similarity": "double",
    "cache_match_id": "varchar",
    "compression_status": "varchar",
    "baseline_model": "varchar",
    "compression_tokens_saved": "bigint",
    "routing_decision": "varchar",
    "policy_version": "varchar",
    "savings_cache_usd": "double",
    "savings_routing_usd": "double",
    "savings_compression_usd": "double",
}

# main.fct_savings (request x lever), the columns the dashboard reads, with dbt's types.
SAVINGS_COLUMNS: dict[str, str] = {
    "savings_id": "varchar",
    "event_id": "varchar",
    "lever": "varchar",
    "event_hour": "timestamp",
    "event_date": "date",
    "billing_period": "varchar",
    "customer_id": "varchar",
    "requested_model": "varchar",
    "served_model": "varchar",
    "baseline_cost_usd": "double",
    "actual_cost_usd": "double",
    "savings_usd": "double",
    "derived_savings_usd": "double",
    "tokens_saved": "bigint",
    "verification_status": "varchar",
    "blocked_reason": "varchar",
    "unverified_reason": "varchar",
    "is_billable": "boolean",
    "x_is_simulated": "boolean",
}

# main.agg_user_metrics_hourly, derived as dbt/models/marts/spend/agg_user_metrics_hourly.sql derives it.
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
    **optimizer: Any,
) -> dict[str, Any]:
    """One request of ``fct_llm_spend``; ``at`` is its UTC start time, e.g. ``"2025-03-01 10:15"``.

    Savings count as an exact cache hit unless ``optimizer`` says otherwise: it overrides any column by name
    (``cache_status``, ``routing_decision``, ``savings_routing_usd``, ``compression_status``…).
    """
    start = dt.datetime.fromisoformat(at)
    status = price_status or ("unknown" if cost is None else "priced")
    cache_hit = (savings or 0) > 0
    unknown = set(optimizer) - set(FCT_COLUMNS)
    assert not unknown, f"not fct_llm_spend columns: {unknown}"
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
        "cache_status": "hit_exact" if cache_hit else None,
        "is_cache_hit": cache_hit,
        "cache_similarity": None,
        "cache_match_id": None,
        "compression_status": None,
        "baseline_model": model,
        "compression_tokens_saved": None,
        "routing_decision": None,
        "policy_version": None,
        "savings_cache_usd": savings if cache_hit else None,
        "savings_routing_usd": None,
        "savings_compression_usd": None,
        **optimizer,
    }


def savings_row(
    spend: dict[str, Any],
    lever: str,
    savings: float | None,
    *,
    status: str = "verified",
    reason: str | None = None,
    tokens_saved: int = 0,
) -> dict[str, Any]:
    """The ``fct_savings`` row of one lever of the ``spend_row`` request ``spend``; ``reason`` is the blocked or
    unverified reason (a default one when the status needs it)."""
    if status != "verified" and reason is None:
        reason = "unknown_price: test" if status == "blocked" else "estimated_usage: test"
    return {
        "savings_id": f"{spend['event_id']}:{lever}",
        "event_id": spend["event_id"],
        "lever": lever,
        "event_hour": spend["event_hour"],
        "event_date": spend["event_date"],
        "billing_period": f"{spend['event_date']:%Y-%m}",
        "customer_id": spend["customer_id"],
        "requested_model": spend["requested_model"],
        "served_model": spend["served_model"],
        "baseline_cost_usd": spend["baseline_cost_usd"],
        "actual_cost_usd": spend["cost_usd"],
        "savings_usd": savings,
        "derived_savings_usd": savings if status == "verified" else None,
        "tokens_saved": tokens_saved,
        "verification_status": status,
        "blocked_reason": reason if status == "blocked" else None,
        "unverified_reason": reason if status == "unverified" else None,
        "is_billable": status == "verified",
        "x_is_simulated": spend["is_simulated"],
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


# --- optimizer activity: every lever and verification status, every cache status, both routing tiers ---------

_NOT_CACHED: dict[str, Any] = {"cache_status": None, "is_cache_hit": False, "savings_cache_usd": None}


def _cached(n: int, at: str, status: str, *, cost: float | None, saved: float = 0.0, **kw: Any) -> dict[str, Any]:
    """A call that looked up the cache: hits cost 0 and save ``saved``; other outcomes went upstream."""
    hit = status.startswith("hit")
    return spend_row(
        n,
        at,
        cost=cost,
        savings=saved,
        cache_status=status,
        is_cache_hit=hit,
        savings_cache_usd=saved if hit else None,
        **kw,
    )


def _routed(n: int, at: str, decision: str, policy: str | None, *, cost: float, saved: float | None) -> dict[str, Any]:
    return spend_row(
        n,
        at,
        model="gpt-4o-mini" if decision.startswith("auto: weak") else "gpt-4o",
        cost=cost,
        savings=saved,
        routing_decision=decision,
        policy_version=policy,
        savings_routing_usd=saved,
        **_NOT_CACHED,
    )


def _compressed(
    n: int, at: str, status: str, *, tokens: int = 0, saved: float | None = None, **kw: Any
) -> dict[str, Any]:
    return spend_row(
        n,
        at,
        savings=saved,
        compression_status=status,
        compression_tokens_saved=tokens,
        savings_compression_usd=saved,
        **{**_NOT_CACHED, **kw},
    )


WEAK, STRONG = "auto: weak (score 0.31 < 0.42 at target 0.95)", "auto: strong (score 0.77 >= 0.42 at target 0.95)"
NO_POLICY = "auto: strong (no routing policy loaded yet)"
_O = {
    # semantic cache (acme, March 1)
    "exact": _cached(101, "2025-03-01 10:00", "hit_exact", cost=0.0, saved=0.40),
    "exact_blocked": _cached(102, "2025-03-01 10:05", "hit_exact", cost=0.0, saved=0.05),
    "semantic": _cached(103, "2025-03-01 10:10", "hit_semantic", cost=0.0, saved=0.30, cache_similarity=0.962),
    "semantic_estimated": _cached(
        104, "2025-03-01 10:15", "hit_semantic", cost=0.0, saved=0.20, cache_similarity=0.915, usage_source="gateway"
    ),
    "shadow_1": _cached(105, "2025-03-01 10:20", "shadow_hit", cost=0.50, cache_similarity=0.934),
    "shadow_2": _cached(106, "2025-03-01 10:25", "shadow_hit", cost=0.25, cache_similarity=0.95),
    "shadow_unpriced": _cached(107, "2025-03-01 10:30", "shadow_hit", cost=None, cache_similarity=0.97),
    "miss": _cached(108, "2025-03-01 10:35", "miss", cost=1.0, cache_similarity=0.70),
    "bypass": _cached(109, "2025-03-01 10:40", "bypass", cost=1.0),
    # learned routing (acme, March 1-3), and a dispatcher fallback that is not learned routing
    "no_policy": _routed(110, "2025-03-01 08:00", NO_POLICY, None, cost=1.0, saved=None),
    "weak_p1": _routed(111, "2025-03-01 09:00", WEAK, "p1", cost=0.10, saved=0.90),
    "strong_p1": _routed(112, "2025-03-02 09:00", STRONG, "p1", cost=1.0, saved=None),
    "weak_p2": _routed(113, "2025-03-03 09:00", WEAK, "p2", cost=0.20, saved=0.60),
    "fallback_route": _routed(
        114, "2025-03-03 09:30", "fallback:gpt-4o->claude after 503 (2 attempts)", None, cost=1.05, saved=-0.05
    ),
    # compression (acme, March 2; one globex call)
    "compressed": _compressed(115, "2025-03-02 10:00", "compressed", tokens=400, saved=0.04),
    "compressed_unpriced": _compressed(
        116, "2025-03-02 10:05", "compressed", tokens=100, cost=None, customer="globex", user="carol"
    ),
    "unchanged": _compressed(117, "2025-03-02 10:10", "unchanged"),
    "fb_number_1": _compressed(118, "2025-03-02 10:15", "fallback: number lost: 42"),
    "fb_number_2": _compressed(119, "2025-03-02 10:20", "fallback: number lost: 3.14"),
    "fb_quality": _compressed(120, "2025-03-02 10:25", "fallback: quality 0.812 < 0.9: entity lost: Karl Marx"),
    "fb_error": _compressed(121, "2025-03-02 10:30", "fallback: error: ValueError('boom')", customer="globex"),
    "fb_question": _compressed(122, "2025-03-02 10:35", "fallback: final question lost: How many apples?"),
    # no optimizer at all (March 5)
    "plain": spend_row(123, "2025-03-05 10:00", cost=2.0, savings=0.0),
}
OPTIMIZER_ROWS = list(_O.values())
OPTIMIZER_SAVINGS = [
    savings_row(_O["exact"], "cache", 0.40, tokens_saved=150),
    savings_row(_O["exact_blocked"], "cache", 0.05, status="blocked", tokens_saved=150),
    savings_row(_O["semantic"], "cache", 0.30, tokens_saved=150),
    savings_row(_O["semantic_estimated"], "cache", 0.20, status="unverified", tokens_saved=150),
    savings_row(_O["weak_p1"], "routing", 0.90),
    savings_row(
        _O["weak_p2"], "routing", 0.60, status="unverified", reason="not_rederivable: claimed 0.6, re-derived 0.5"
    ),
    savings_row(_O["fallback_route"], "routing", -0.05),
    savings_row(_O["compressed"], "compression", 0.04, tokens_saved=400),
    savings_row(
        _O["compressed_unpriced"],
        "compression",
        None,
        status="blocked",
        reason="unknown_price: gpt-4o / gpt-4o not priced by test-1",
        tokens_saved=100,
    ),
]
"""By lever: cache verified 0.70 (2), unverified 0.20 (1), blocked 0.05 (1), 600 tokens; routing verified 0.85
(2, one negative), unverified 0.60 (1); compression verified 0.04 (1), blocked unpriced (1), 500 tokens.
Verified in all: 1.59. Shadow hits would have saved 0.50 + 0.25 (one more is unpriced)."""


Rows = Sequence[dict[str, Any]]


def _create(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str], rows: Rows) -> None:
    con.execute(f"create table main.{table} ({', '.join(f'{name} {kind}' for name, kind in columns.items())})")
    if rows:
        names = list(columns)
        con.executemany(
            f"insert into main.{table} ({', '.join(names)}) values ({', '.join('?' * len(names))})",
            [[row[n] for n in names] for row in rows],
        )


def _dbt_mart(name: str) -> tuple[str, set[str]]:
    """The SQL of dbt model ``name`` with its refs resolved to ``main.<model>``, and the models it refs."""
    (model,) = DBT_MARTS.rglob(f"{name}.sql")
    refs: set[str] = set()

    def ref(model_name: str) -> str:
        refs.add(model_name)
        return f"main.{model_name}"

    return jinja2.Template(model.read_text()).render(ref=ref), refs


def _create_optimizer_marts(con: duckdb.DuckDBPyConnection) -> None:
    """The optimizer marts whose inputs exist, as views: they follow later changes to the tables they read, like a
    warehouse whose marts were built from them (a column dropped afterwards breaks them as it would the build)."""
    tables = {name for (name,) in con.execute("select table_name from information_schema.tables").fetchall()}
    for name in OPTIMIZER_MARTS:
        sql, refs = _dbt_mart(name)
        if refs <= tables:
            con.execute(f"create view main.{name} as {sql}")


def build_warehouse(
    path: Path,
    rows: Sequence[dict[str, Any]],
    *,
    with_agg: bool = True,
    savings: Sequence[dict[str, Any]] | None = (),
) -> Path:
    """``fct_llm_spend`` holding ``rows``, its hourly aggregate, ``fct_savings`` holding ``savings`` (no such
    table when ``savings`` is None), and the optimizer marts over them (those that read fct_savings only with it)."""
    con = duckdb.connect(str(path))
    try:
        _create(con, "fct_llm_spend", FCT_COLUMNS, rows)
        if with_agg:
            con.execute(AGG_SQL)
        if savings is not None:
            _create(con, "fct_savings", SAVINGS_COLUMNS, savings)
        _create_optimizer_marts(con)
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
    """Build ``tmp_path/<name>.duckdb`` holding ``rows``, (unless ``with_agg=False``) the aggregate, and the
    ``savings`` rows of ``fct_savings`` (``savings=None``: no such table)."""

    def make(
        rows: Sequence[dict[str, Any]] = SAMPLE_ROWS,
        *,
        name: str = "warehouse",
        with_agg: bool = True,
        savings: Sequence[dict[str, Any]] | None = (),
    ) -> Path:
        return build_warehouse(tmp_path / f"{name}.duckdb", rows, with_agg=with_agg, savings=savings)

    return make


@pytest.fixture
def sample_warehouse(make_warehouse: WarehouseFactory) -> Path:
    return make_warehouse()


@pytest.fixture
def optimizer_warehouse(make_warehouse: WarehouseFactory) -> Path:
    return make_warehouse(OPTIMIZER_ROWS, name="optimizers", savings=OPTIMIZER_SAVINGS)


@pytest.fixture
def row() -> Callable[..., dict[str, Any]]:
    """The ``spend_row`` factory, for tests that need their own requests."""
    return spend_row


@pytest.fixture
def lever_row() -> Callable[..., dict[str, Any]]:
    """The ``savings_row`` factory (``fct_savings``), for tests that need their own lever claims."""
    return savings_row


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
