"""Abuse figures for the gateway (issue 15, findings 2 and 4), on loopback, with bounded request counts.

1. **Metrics bloat**: ``--bloat-calls`` (20) chat calls with a ``--name-kb`` (100 KB) model name (unknown: 404),
   then ``GET /metrics``: its size, the scrape's wall time, and a chat call's latency while a scrape runs.
2. **Bad-key flood**: valid-key latency (a closed loop of ``--valid-conns`` connections) without a flood, then
   while ``--flood`` (2,000) requests with distinct wrong keys are sent at once; the valid calls' p50/p99 in both
   phases and the flood's status codes.

Starts its own gateway (``apex gateway``, a simulated provider that answers at once, a fresh data dir under
``bench/results/auth_flood-<time>/``) on a free port and stops it at the end.

    .venv/bin/python bench/auth_flood.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _procs import RESULTS, ROOT, Procs, apex_cmd, log, run_guarded, wait_ready  # noqa: E402

CHAT = "/v1/chat/completions"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _body(model: str = "gpt-4o-mini") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _chat(session: aiohttp.ClientSession, url: str, key: str, body: dict[str, Any]) -> tuple[int, float]:
    t0 = time.perf_counter()
    async with session.post(url + CHAT, json=body, headers={"authorization": f"Bearer {key}"}) as resp:
        await resp.read()
        return resp.status, (time.perf_counter() - t0) * 1000


async def _valid_loop(
    session: aiohttp.ClientSession, url: str, key: str, stop: asyncio.Event, out: list[float], bad: list[int]
) -> None:
    while not stop.is_set():
        status, ms = await _chat(session, url, key, _body())
        if status == 200:
            out.append(ms)
        else:
            bad.append(status)


async def metrics_bloat(url: str, key: str, calls: int, name_kb: int) -> dict[str, Any]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        statuses = Counter()
        for i in range(calls):
            name = f"{i:04d}" + "m" * (name_kb * 1024 - 4)
            status, _ = await _chat(session, url, key, _body(name))
            statuses[status] += 1
        await asyncio.sleep(1.5)  # the writer feeds the metrics a drain at a time
        t0 = time.perf_counter()
        scrape = asyncio.create_task(session.get(url + "/metrics"))
        await asyncio.sleep(0)
        during: list[float] = []
        while not scrape.done():
            _, ms = await _chat(session, url, key, _body())
            during.append(ms)
        resp = await scrape
        text = await resp.read()
        scrape_ms = (time.perf_counter() - t0) * 1000
        return {
            "bloat_statuses": dict(statuses),
            "metrics_status": resp.status,
            "metrics_bytes": len(text),
            "scrape_ms": round(scrape_ms, 1),
            "chat_during_scrape_max_ms": round(max(during), 1) if during else None,
        }


async def _bad_burst(url: str, n_bad: int) -> dict[str, int]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        results = await asyncio.gather(
            *(_chat(session, url, f"sk-wrong-{i:06d}-{time.time_ns()}", _body()) for i in range(n_bad)),
            return_exceptions=True,
        )
    return dict(Counter(str(r[0]) if isinstance(r, tuple) else type(r).__name__ for r in results))


def _bad_burst_process(url: str, n_bad: int, out: Any) -> None:
    t0 = time.perf_counter()
    statuses = asyncio.run(_bad_burst(url, n_bad))
    out.put((statuses, time.perf_counter() - t0))


async def flood(url: str, key: str, n_bad: int, conns: int, baseline_s: float) -> dict[str, Any]:
    """The valid calls run here; the burst of wrong keys comes from another process (its own core's worth of
    client), as a hostile client would send it."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        for _ in range(50):  # warm the key cache and the connections
            await _chat(session, url, key, _body())
        base: list[float] = []
        base_bad: list[int] = []
        stop = asyncio.Event()
        loops = [asyncio.create_task(_valid_loop(session, url, key, stop, base, base_bad)) for _ in range(conns)]
        await asyncio.sleep(baseline_s)
        stop.set()
        await asyncio.gather(*loops)

        during: list[float] = []
        during_bad: list[int] = []
        stop = asyncio.Event()
        loops = [asyncio.create_task(_valid_loop(session, url, key, stop, during, during_bad)) for _ in range(conns)]
        queue: Any = multiprocessing.Queue()
        burst = multiprocessing.Process(target=_bad_burst_process, args=(url, n_bad, queue))
        burst.start()
        while burst.is_alive():
            await asyncio.sleep(0.05)
        statuses, flood_s = queue.get(timeout=5)
        stop.set()
        await asyncio.gather(*loops)
    return {
        "baseline_calls": len(base),
        "baseline_p50_ms": round(_pct(base, 0.5), 2),
        "baseline_p99_ms": round(_pct(base, 0.99), 2),
        "flood_requests": n_bad,
        "flood_seconds": round(flood_s, 2),
        "flood_statuses": statuses,
        "valid_calls_during_flood": len(during),
        "valid_failed_during_flood": dict(Counter(during_bad)),
        "valid_p50_ms_during_flood": round(_pct(during, 0.5), 2),
        "valid_p99_ms_during_flood": round(_pct(during, 0.99), 2),
        "valid_max_ms_during_flood": round(max(during), 2) if during else None,
        "valid_mean_ms_during_flood": round(statistics.fmean(during), 2) if during else None,
    }


def run(args: argparse.Namespace) -> int:
    out_dir = RESULTS / f"auth_flood-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    out_dir.mkdir(parents=True)
    port = _free_port()
    config = out_dir / "apex.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "gateway": {"host": "127.0.0.1", "port": port},
                "data": {"dir": str(out_dir / "data")},
                "providers": [{"name": "sim", "kind": "simulated", "latency_scale": 0.0}],
                "models": [{"name": "gpt-4o-mini", "provider": "sim"}],
            }
        )
    )
    sys.path.insert(0, str(ROOT))
    from contracts.settings import load_settings
    from gateway.keys import KeyStore

    _, key = KeyStore(load_settings(config).data.gateway_db_path).create("bench-flood")
    procs = Procs()
    try:
        logfile = out_dir / "gateway.log"
        cmd = [*apex_cmd(), "gateway", "--config", str(config), "--port", str(port), "--log-level", "warning"]
        proc = procs.start("gateway", cmd, logfile=logfile)
        url = f"http://127.0.0.1:{port}"
        wait_ready(url + "/health", proc, "gateway", logfile)
        figures: dict[str, Any] = {}
        if not args.skip_bloat:
            log(f"metrics bloat: {args.bloat_calls} calls with {args.name_kb} KB model names")
            figures.update(asyncio.run(metrics_bloat(url, key, args.bloat_calls, args.name_kb)))
        log(f"flood: {args.flood} wrong keys at once, valid calls at c={args.valid_conns}")
        figures.update(asyncio.run(flood(url, key, args.flood, args.valid_conns, args.baseline_s)))
    finally:
        procs.stop_all()
    print(json.dumps(figures, indent=2))
    (out_dir / "figures.json").write_text(json.dumps(figures, indent=2))
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bloat-calls", type=int, default=20)
    p.add_argument("--name-kb", type=int, default=100)
    p.add_argument("--skip-bloat", action="store_true")
    p.add_argument("--flood", type=int, default=2000)
    p.add_argument("--valid-conns", type=int, default=4)
    p.add_argument("--baseline-s", type=float, default=3.0)
    return run_guarded(run, p.parse_args())


if __name__ == "__main__":
    sys.exit(main())
