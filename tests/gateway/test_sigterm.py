"""SIGTERM in the middle of load: every call the gateway answered is in the event log."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess

import httpx
import polars as pl
import pytest
import yaml

from contracts.settings import load_settings
from gateway.keys import KeyStore
from tests.gateway_process import start_gateway_process

pytestmark = pytest.mark.slow


async def _load(url: str, key: str, answered: list[str], stop_after: float, proc: subprocess.Popen) -> None:
    headers = {"authorization": f"Bearer {key}"}

    async def worker(i: int) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            n = 0
            while True:
                n += 1
                body = {
                    "model": "gpt-4o-mini",
                    "stream": n % 3 == 0,
                    "messages": [{"role": "user", "content": f"worker {i} call {n}"}],
                }
                try:
                    r = await client.post(url, json=body, headers=headers)
                except httpx.HTTPError:
                    return  # the gateway stopped accepting
                if r.status_code == 200 and (not body["stream"] or r.text.rstrip().endswith("data: [DONE]")):
                    answered.append(r.headers["x-request-id"])
                elif r.status_code != 200:
                    return

    async def terminator() -> None:
        await asyncio.sleep(stop_after)
        proc.send_signal(signal.SIGTERM)

    await asyncio.gather(terminator(), *(worker(i) for i in range(24)))


def test_sigterm_during_load_loses_no_answered_call(tmp_path):
    cfg = {
        "data": {"dir": str(tmp_path / "data")},
        "events": {"flush_seconds": 30, "flush_rows": 100000},  # nothing flushes before the signal
        "providers": [{"name": "sim", "kind": "simulated", "latency_scale": 0.02}],
        "models": [{"name": "gpt-4o-mini", "provider": "sim"}],
    }
    path = tmp_path / "apex.yaml"
    path.write_text(yaml.safe_dump(cfg))
    settings = load_settings(path)
    _, key = KeyStore(settings.data.gateway_db_path).create("load", customer_id="c")
    gw = start_gateway_process(path, tmp_path / "gateway.log")
    proc = gw.proc
    try:
        answered: list[str] = []
        asyncio.run(_load(f"{gw.url}/v1/chat/completions", key, answered, 1.5, proc))
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = gw.output()
    # uvicorn re-raises the signal after its graceful shutdown, so "killed by SIGTERM" is the clean exit
    assert code in (0, -signal.SIGTERM), output
    assert len(answered) > 50, "the load did not get going before the signal"
    files = list(settings.data.events_path.glob("date=*/hour=*/*.parquet"))
    events = pl.concat([pl.read_parquet(f) for f in files])
    logged = set(events["request_id"].to_list())
    missing = [rid for rid in answered if rid not in logged]
    assert not missing, f"{len(missing)} answered calls have no event"
    assert events["event_id"].n_unique() == events.height
    assert "event writer closed" in output
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]  # structured logs: JSON lines
    assert {"ts", "level", "logger", "msg"} <= set(lines[0])
    assert key not in output  # secrets never reach the logs
