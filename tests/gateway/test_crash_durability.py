"""Crash durability through real gateway processes: kill -9 under load, a bounded drain on SIGTERM, and one
gateway per data directory."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import yaml

from contracts.settings import load_settings
from gateway.keys import KeyStore
from tests.gateway.conftest import free_port
from tests.gateway_process import start_gateway_process

pytestmark = pytest.mark.slow

FLUSH_MS = 10
LOSS_BOUND_S = 0.1
"""A kill -9 may lose only calls answered this close to the kill (the WAL flush interval, plus the writer's lag)."""


def _config(tmp_path: Path, **events: Any) -> Path:
    cfg = {
        "data": {"dir": str(tmp_path / "data")},
        # nothing reaches Parquet before the kill: every event must come back from the write-ahead log
        "events": {"flush_seconds": 30, "flush_rows": 100_000, "wal_flush_ms": FLUSH_MS, **events},
        "gateway": {"drain_timeout_s": 3},
        "providers": [
            {"name": "sim", "kind": "simulated", "latency_scale": 0.02},
            {"name": "slow", "kind": "simulated", "latency_scale": 200},
        ],
        "models": [{"name": "gpt-4o-mini", "provider": "sim"}, {"name": "slow-mini", "provider": "slow"}],
    }
    path = tmp_path / "apex.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _events(config: Path) -> pl.DataFrame:
    files = sorted(load_settings(config).data.events_path.glob("date=*/hour=*/*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame()


def _keys_json(config: Path) -> list[dict[str, Any]]:
    apex = Path(sys.executable).with_name("apex")
    out = subprocess.run(
        [str(apex), "keys", "list", "--json", "--config", str(config)], capture_output=True, text=True, check=True
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


async def _load(url: str, key: str, seconds: float, answered: dict[str, float]) -> None:
    """16 clients call as fast as they can for ``seconds``; each answered call's request id and the moment (monotonic)
    its whole answer was in."""
    headers = {"authorization": f"Bearer {key}"}
    deadline = time.monotonic() + seconds

    async def worker(i: int) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            n = 0
            while time.monotonic() < deadline:
                n += 1
                body = {
                    "model": "gpt-4o-mini",
                    "stream": n % 3 == 0,
                    "messages": [{"role": "user", "content": f"worker {i} call {n}"}],
                }
                try:
                    r = await client.post(f"{url}/v1/chat/completions", json=body, headers=headers)
                except httpx.HTTPError:
                    return
                if r.status_code == 200 and (not body["stream"] or r.text.rstrip().endswith("data: [DONE]")):
                    answered[r.headers["x-request-id"]] = time.monotonic()

    await asyncio.gather(*(worker(i) for i in range(16)))


def test_kill_9_under_load_loses_at_most_the_last_flush_interval_and_spend_matches_events(tmp_path):
    config = _config(tmp_path)
    settings = load_settings(config)
    key, plain = KeyStore(settings.data.gateway_db_path).create("load", customer_id="c", budget_usd=100.0)
    gw = start_gateway_process(config, tmp_path / "gateway.log", "--log-level", "warning")
    answered: dict[str, float] = {}
    try:
        asyncio.run(_load(gw.url, plain, 3.0, answered))
        # kill while the clients are still calling: the last answers are as fresh as they get
        killed_at = time.monotonic()
        gw.proc.send_signal(signal.SIGKILL)
        gw.proc.wait(10)
    finally:
        gw.stop()
    assert len(answered) > 100, "the load did not get going"

    restarted = start_gateway_process(config, tmp_path / "restart.log", "--log-level", "warning")
    assert restarted.stop() in (0, -signal.SIGTERM), restarted.output()

    events = _events(config)
    assert events["event_id"].n_unique() == events.height, "an event was written twice"
    logged = set(events["request_id"].to_list())
    lost = {rid: t for rid, t in answered.items() if rid not in logged}
    recent = sum(1 for t in answered.values() if t >= killed_at - LOSS_BOUND_S)
    print(f"answered {len(answered)}, lost {len(lost)}, answered in the last {LOSS_BOUND_S * 1000:.0f} ms: {recent}")
    late = {rid: round(killed_at - t, 3) for rid, t in lost.items() if t < killed_at - LOSS_BOUND_S}
    assert not late, f"{len(late)} calls answered more than {LOSS_BOUND_S} s before the kill are lost: {late}"

    # the spend counters match the events exactly: lifetime spend and the budget window
    costs = events.filter(pl.col("key_id") == key.key_id)["cost_usd"].sum()
    assert costs > 0
    listed = {k["name"]: k for k in _keys_json(config)}
    assert listed["load"]["spent_usd"] == pytest.approx(costs, rel=1e-9)
    with sqlite3.connect(settings.data.gateway_db_path) as db:
        (window,) = db.execute(
            "SELECT spent_usd FROM period_spend WHERE scope = 'key' AND scope_id = ? AND period_window = 'total'",
            (key.key_id,),
        ).fetchone()
    assert window == pytest.approx(costs, rel=1e-9)
    assert not list((settings.data.events_path / "_wal").glob("*.log")), "a clean stop leaves the log empty"


@pytest.mark.parametrize("fsync", [False, True], ids=["write", "write+fsync"])
def test_sync_durability_loses_nothing_answered_to_kill_9(tmp_path, fsync):
    config = _config(tmp_path, durability="sync", wal_fsync=fsync)
    settings = load_settings(config)
    _, plain = KeyStore(settings.data.gateway_db_path).create("load", customer_id="c")
    gw = start_gateway_process(config, tmp_path / "gateway.log", "--log-level", "warning")
    answered: dict[str, float] = {}
    try:
        asyncio.run(_load(gw.url, plain, 1.5, answered))
        gw.proc.send_signal(signal.SIGKILL)
        gw.proc.wait(10)
    finally:
        gw.stop()
    start_gateway_process(config, tmp_path / "restart.log", "--log-level", "warning").stop()
    logged = set(_events(config)["request_id"].to_list())
    print(f"sync (fsync={fsync}): answered {len(answered)} in 1.5 s")
    assert len(answered) > 10, "the load did not get going"
    assert not [rid for rid in answered if rid not in logged]


def test_sigterm_with_calls_in_flight_exits_within_the_drain_timeout_and_keeps_every_answer(tmp_path):
    config = _config(tmp_path)
    _, plain = KeyStore(load_settings(config).data.gateway_db_path).create("load", customer_id="c")
    gw = start_gateway_process(config, tmp_path / "gateway.log")
    headers = {"authorization": f"Bearer {plain}"}
    answered: dict[str, float] = {}

    async def burst_then_term() -> float:
        await _load(gw.url, plain, 1.0, answered)
        async with httpx.AsyncClient(timeout=120) as client:
            slow = [
                asyncio.create_task(
                    client.post(
                        f"{gw.url}/v1/chat/completions",
                        json={"model": "slow-mini", "messages": [{"role": "user", "content": f"long {i}"}]},
                        headers=headers,
                    )
                )
                for i in range(20)
            ]
            await asyncio.sleep(0.5)  # the slow calls are in flight
            t0 = time.monotonic()
            gw.proc.send_signal(signal.SIGTERM)
            while gw.proc.poll() is None and time.monotonic() - t0 < 60:
                await asyncio.sleep(0.05)
            elapsed = time.monotonic() - t0
            await asyncio.gather(*slow, return_exceptions=True)
            return elapsed

    try:
        elapsed = asyncio.run(burst_then_term())
    finally:
        gw.stop()
    output = gw.output()
    assert elapsed <= 3 + 1.5, f"SIGTERM took {elapsed:.1f} s with gateway.drain_timeout_s = 3:\n{output[-3000:]}"
    # what the drain could not write is in the write-ahead log: the next start writes it
    start_gateway_process(config, tmp_path / "restart.log").stop()
    logged = set(_events(config)["request_id"].to_list())
    assert len(answered) > 10, "the load did not get going"
    assert not [rid for rid in answered if rid not in logged]


def test_a_second_gateway_on_the_same_data_dir_exits_with_the_lock_message_and_touches_nothing(tmp_path):
    config = _config(tmp_path)
    settings = load_settings(config)
    _, plain = KeyStore(settings.data.gateway_db_path).create("k", customer_id="c")
    first = start_gateway_process(config, tmp_path / "first.log")
    try:
        # a spill file the first gateway has not folded in yet: a second gateway must not take it
        spill = settings.data.events_path / "_spill" / "spill-first.jsonl"
        spill.parent.mkdir(parents=True, exist_ok=True)
        spill.write_bytes(b"")
        before = sorted(str(p.relative_to(settings.data.dir)) for p in settings.data.dir.rglob("*"))
        apex = Path(sys.executable).with_name("apex")
        t0 = time.monotonic()
        second = subprocess.run(
            [str(apex), "gateway", "--config", str(config), "--port", str(free_port())],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert time.monotonic() - t0 < 10
        assert second.returncode != 0
        message = second.stderr + second.stdout
        assert str(settings.data.dir.resolve()) in message
        assert f"PID {first.proc.pid}" in message
        after = sorted(str(p.relative_to(settings.data.dir)) for p in settings.data.dir.rglob("*"))
        assert after == before
        assert spill.exists()
        r = httpx.post(
            f"{first.url}/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "still there?"}]},
            headers={"authorization": f"Bearer {plain}"},
            timeout=10,
        )
        assert r.status_code == 200
    finally:
        assert first.stop() in (0, -signal.SIGTERM), first.output()
