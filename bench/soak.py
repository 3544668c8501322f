"""Memory soak of the Apex gateway: does its RSS plateau over >= 500,000 requests with the event log on?

Starts the fake provider and the gateway (``apex gateway``, aiohttp transport, events on, a fresh data dir
``bench/results/soak-<UTC time>/``), then drives ``--requests`` requests (default 500,000) with wrk at
``--connections`` (32) in segments of ``--segment`` seconds: 4 of every 5 requests non-streaming, 1 of 5
``stream: true`` (the gateway streams SSE; wrk reads the chunked answer to its end). After each segment it
reads the gateway's RSS (``VmRSS`` in /proc/<pid>/status; also sampled every 2 s in between for the peak) and
its ``/health`` event counters, and prints a row.

Verdicts:
* plateau: RSS growth over the second half of the run (from the first sample at >= N/2 requests to the last)
  is < 5 % and < 20 MB;
* events: the gateway accepted one event per request (wrk drops up to ``connections`` in-flight calls per
  segment, which the gateway still records), dropped none and had no write errors, and after the writer's flush
  interval every accepted event is written or spilled;
* no request failed (wrk: status >= 400, socket errors).
Exit status 0 only if all hold. A 500k run takes about 4-5 minutes on 2 vCPUs.

    .venv/bin/python bench/soak.py                    # 500,000 requests
    .venv/bin/python bench/soak.py --requests 50000   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _procs import (  # noqa: E402
    CONFIG,
    GATEWAY_PORT,
    MOCK_PORT,
    PATH,
    RESULTS,
    ROOT,
    Procs,
    gateway_health,
    log,
    port_in_use,
    register_key,
    run_guarded,
    start_fake_provider,
    start_gateway,
)
from _wrk import run_load  # noqa: E402
from gateway_bench import git_commit, sanity_check  # noqa: E402

PLATEAU_MAX_PCT = 5.0
PLATEAU_MAX_MB = 20.0


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Sampler(threading.Thread):
    def __init__(self, pid: int, every: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic() - t0, rss_mb(self.pid)))
            except (OSError, RuntimeError):
                return
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()


def write_config(data_dir: Path) -> Path:
    """bench/gateway.yaml with its data dir pointed at ``data_dir`` (relative to the repo root)."""
    text = (ROOT / CONFIG).read_text()
    lines = [
        f"  dir: {data_dir.relative_to(ROOT)}   # soak run" if ln.strip().startswith("dir:") else ln
        for ln in text.splitlines()
    ]
    path = data_dir / "gateway-soak.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(args: argparse.Namespace) -> int:
    os.chdir(ROOT)
    if shutil.which("wrk") is None:
        log("the soak needs wrk on PATH (apt-get install -y wrk)")
        return 2
    for port in (MOCK_PORT, GATEWAY_PORT):
        if port_in_use(port):
            log(f"port {port} is already in use: stop what listens there first")
            return 2
    pin = not args.no_pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    gw_cpu, side_cpu = (0, 1) if pin else (None, None)
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    data_dir = RESULTS / f"soak-{stamp}"
    data_dir.mkdir(parents=True)
    config = write_config(data_dir)
    register_key(config)
    commit = git_commit()
    log(f"data dir {data_dir.relative_to(ROOT)}; gateway code: {commit}")

    procs = Procs()
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    total = 0
    failed = 0
    t_start = time.monotonic()
    gw = f"http://127.0.0.1:{GATEWAY_PORT}"
    sampler: Sampler | None = None
    try:
        start_fake_provider(procs, side_cpu, logname="soak-fake_provider.log")
        proc = start_gateway(procs, "aiohttp", gw_cpu, config=config, logname="soak-gateway.log")
        sanity_check(gw + PATH, "gateway")
        base_events = int(gateway_health(gw)["events"]["accepted"])  # the two sanity calls
        sampler = Sampler(proc.pid)
        sampler.start()
        rows.append({"requests": 0, "seconds": 0.0, "rss_mb": rss_mb(proc.pid), "rps": 0.0, "accepted": 0})
        print(
            f"{'requests':>10} {'elapsed s':>9} {'req/s':>8} {'RSS MB':>8} {'events':>10} {'queued':>7} {'dropped':>7}"
        )
        segments = 0
        while total < args.requests:
            res = run_load(procs, gw + PATH, args.connections, args.segment, use_wrk=True, cpu=side_cpu, mix=True)
            segments += 1
            total += res["requests"]
            failed += res["non2xx"] + res["socket_errors"]
            ev = gateway_health(gw)["events"]
            row = {
                "requests": total,
                "seconds": round(time.monotonic() - t_start, 1),
                "rss_mb": round(rss_mb(proc.pid), 1),
                "rps": res["rps"],
                "accepted": int(ev["accepted"]) - base_events,
                "queued": ev.get("queued", 0),
                "dropped": ev.get("dropped", 0),
            }
            rows.append(row)
            print(
                f"{row['requests']:>10,} {row['seconds']:>9.1f} {row['rps']:>8.0f} {row['rss_mb']:>8.1f} "
                f"{row['accepted']:>10,} {row['queued']:>7} {row['dropped']:>7}",
                flush=True,
            )
        sampler.stop()
        time.sleep(0.5)
        ev = gateway_health(gw)["events"]
        accepted = int(ev["accepted"]) - base_events
        tolerance = segments * args.connections  # calls in flight when each wrk segment stopped
        if not total <= accepted <= total + tolerance:
            problems.append(f"events: {accepted:,} accepted for {total:,} requests (allowed up to +{tolerance})")
        if ev.get("dropped") or ev.get("write_errors"):
            problems.append(f"events: dropped {ev.get('dropped')}, write errors {ev.get('write_errors')}")
        # after the writer's flush interval, every accepted event must be on disk (or spilled)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            ev = gateway_health(gw)["events"]
            if ev["written"] + ev["spilled"] == ev["accepted"]:
                break
            time.sleep(1)
        else:
            problems.append(f"events: {ev['accepted']} accepted but {ev['written']} written + {ev['spilled']} spilled")
        final_events = ev
        if failed:
            problems.append(f"{failed} requests failed (status >= 400 or socket errors)")
    finally:
        if sampler is not None:
            sampler.stop()
        procs.stop_all()
    elapsed = time.monotonic() - t_start

    half = next(r for r in rows if r["requests"] >= args.requests / 2)
    last = rows[-1]
    growth_mb = last["rss_mb"] - half["rss_mb"]
    growth_pct = 100.0 * growth_mb / half["rss_mb"]
    plateau = growth_pct < PLATEAU_MAX_PCT and growth_mb < PLATEAU_MAX_MB
    peak = max((s[1] for s in sampler.samples), default=last["rss_mb"]) if sampler else last["rss_mb"]
    print()
    print(
        f"soak: {total:,} requests (~80 % plain, ~20 % stream) in {elapsed:.0f} s, {args.connections} connections, "
        f"pinned: {'yes' if pin else 'no'}; gateway code: {commit}"
    )
    print(
        f"RSS: start {rows[0]['rss_mb']:.1f} MB, at {half['requests']:,} requests {half['rss_mb']:.1f} MB, "
        f"end {last['rss_mb']:.1f} MB, peak {peak:.1f} MB (sampled every 2 s)"
    )
    print(
        f"plateau (second-half growth {growth_mb:+.1f} MB = {growth_pct:+.1f} %; limit < {PLATEAU_MAX_PCT:g} % and "
        f"< {PLATEAU_MAX_MB:g} MB): {'PASS' if plateau else 'MISS'}"
    )
    print(f"events: {final_events}")
    if problems:
        print("!!! PROBLEMS: " + "; ".join(problems))
    else:
        print("all requests succeeded; one event per request, none dropped, all written")
    summary = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "requests": total,
        "seconds": round(elapsed, 1),
        "connections": args.connections,
        "rows": rows,
        "rss_half_mb": half["rss_mb"],
        "rss_end_mb": last["rss_mb"],
        "rss_peak_mb": round(peak, 1),
        "growth_second_half_mb": round(growth_mb, 1),
        "growth_second_half_pct": round(growth_pct, 2),
        "plateau": plateau,
        "events": final_events,
        "problems": problems,
        "ok": plateau and not problems,
    }
    line = json.dumps(summary, separators=(",", ":"))
    (RESULTS / f"soak-{stamp}.json").write_text(line + "\n")
    print(line)
    return 0 if summary["ok"] else 1


def main() -> int:
    parser = argparse.ArgumentParser(description="Apex gateway memory soak (see bench/README.md).")
    parser.add_argument("--requests", type=int, default=500_000, help="requests to send (default 500,000)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--segment", type=float, default=10.0, help="seconds per wrk run between samples")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs with taskset")
    args = parser.parse_args()
    return run_guarded(run, args)


if __name__ == "__main__":
    sys.exit(main())
