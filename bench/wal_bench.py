"""What the events' write-ahead log costs: throughput and p99 at c=32 through the gateway, per durability mode.

Modes (each a fresh data directory, the bench key registered, the fake provider upstream):

* ``today``  — the commit before the log (``git archive HEAD`` unpacked to a temporary directory and run from
  there; no ``--baseline-ref`` means HEAD): events in memory until the Parquet roll;
* ``batch``  — the default: the writer thread appends to the log every ``events.wal_flush_ms`` and fsyncs;
* ``sync``   — the event is written and fsynced before the response completes (the response waits);
* ``sync-nofsync`` — written (not fsynced) before the response completes: survives kill -9, not a power loss.

Layout as in ``bench/gateway_bench.py``: the gateway pinned to cpu0, the fake provider and wrk to cpu1. Modes are
measured in ``--rounds`` rounds, the order rotating each round (the VM drifts); the table prints every round and
the median, and each mode's median against ``today``.

    .venv/bin/python bench/wal_bench.py                 # 3 rounds x 4 modes x 10 s, ~4 min
    .venv/bin/python bench/wal_bench.py --duration 5 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _procs import (  # noqa: E402
    GATEWAY_PORT,
    MOCK_PORT,
    PATH,
    RESULTS,
    ROOT,
    Procs,
    log,
    pin,
    start_fake_provider,
    wait_ready,
)
from _wrk import run_load  # noqa: E402

MODES: dict[str, dict[str, Any] | None] = {
    "today": None,
    "batch": {"durability": "batch", "wal_fsync": True},
    "sync": {"durability": "sync", "wal_fsync": True},
    "sync-nofsync": {"durability": "sync", "wal_fsync": False},
}
WORK = RESULTS / "wal"


def _config(mode: str, events: dict[str, Any] | None) -> Path:
    data = WORK / f"data-{mode}"
    shutil.rmtree(data, ignore_errors=True)
    cfg: dict[str, Any] = {
        "gateway": {"host": "127.0.0.1", "port": GATEWAY_PORT, "upstream_transport": "aiohttp"},
        "data": {"dir": str(data)},
        "providers": [{"name": "fake", "kind": "openai_compatible", "base_url": f"http://127.0.0.1:{MOCK_PORT}/v1"}],
        "models": [{"name": "gpt-4o-mini", "provider": "fake"}],
    }
    if events is not None:
        cfg["events"] = events
    path = WORK / f"{mode}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    return path


def _baseline_tree(ref: str) -> Path:
    """The gateway as of ``ref``, unpacked without touching the working tree or the index."""
    dest = Path(tempfile.mkdtemp(prefix="apex-wal-bench-"))
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _start_gateway(procs: Procs, tree: Path, config: Path, mode: str, cpu: int | None) -> subprocess.Popen[bytes]:
    """``apex gateway`` run from ``tree`` (its packages shadow the installed ones: the working directory comes
    first on ``sys.path``)."""
    register = (
        "import sys; from pathlib import Path; sys.path.insert(0, 'bench'); "
        f"from _procs import register_key; register_key(Path({str(config)!r}))"
    )
    subprocess.run([sys.executable, "-c", register], cwd=tree, check=True, capture_output=True)
    logfile = WORK / f"gateway-{mode}.log"
    launch = "import sys; sys.path.insert(0, '.'); sys.argv[0] = 'apex'; from contracts.console import main; main()"
    cmd = [*pin(cpu), sys.executable, "-c", launch, "gateway", "--config", str(config)]
    cmd += ["--port", str(GATEWAY_PORT), "--log-level", "warning"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)
    with open(logfile, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    procs.running.append((f"gateway-{mode}", proc))
    wait_ready(f"http://127.0.0.1:{GATEWAY_PORT}/health", proc, f"gateway ({mode})", logfile)
    return proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (after a 2 s warm-up)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--baseline-ref", default="HEAD", help="the commit measured as `today`")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ", ".join(MODES))
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        log("wal_bench needs wrk (apt-get install -y wrk)")
        return 1
    modes = [m for m in args.modes.split(",") if m]
    two_cores = (os.cpu_count() or 1) >= 2
    gw_cpu, load_cpu = (0, 1) if two_cores else (None, None)
    WORK.mkdir(parents=True, exist_ok=True)
    baseline = _baseline_tree(args.baseline_ref) if "today" in modes else None
    procs = Procs()
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    try:
        start_fake_provider(procs, load_cpu, "wal_bench_fake_provider.log")
        url = f"http://127.0.0.1:{GATEWAY_PORT}{PATH}"
        for r in range(args.rounds):
            order = modes[r % len(modes) :] + modes[: r % len(modes)]
            for mode in order:
                tree = baseline if mode == "today" else ROOT
                assert tree is not None
                proc = _start_gateway(procs, tree, _config(mode, MODES[mode]), mode, gw_cpu)
                run_load(procs, url, args.conns, 2.0, use_wrk=True, cpu=load_cpu)  # warm-up
                res = run_load(procs, url, args.conns, args.duration, use_wrk=True, cpu=load_cpu)
                procs.stop(proc, timeout=40)
                if res["non2xx"] or res["socket_errors"]:
                    log(f"{mode}: {res['non2xx']} non-2xx, {res['socket_errors']} socket errors")
                results[mode].append(res)
                figures = f"{res['rps']:8.0f} req/s  p50 {res['p50_ms']:.2f} ms  p99 {res['p99_ms']:.2f} ms"
                log(f"round {r + 1} {mode:>13}: {figures}")
    finally:
        procs.stop_all()
        if baseline is not None:
            shutil.rmtree(baseline, ignore_errors=True)

    summary: dict[str, dict[str, Any]] = {}
    print(f"\nc={args.conns}, {args.duration:.0f} s per measurement, {args.rounds} rounds (median | every round)")
    print(f"{'mode':>13} {'req/s':>9} {'p99 ms':>8}  {'vs today':>9}   rounds (req/s, p99 ms)")
    base = None
    for mode in modes:
        rps = statistics.median(x["rps"] for x in results[mode])
        p99 = statistics.median(x["p99_ms"] for x in results[mode])
        if mode == "today":
            base = rps
        rel = f"{(rps / base - 1) * 100:+.1f} %" if base else ""
        rounds = ", ".join(f"{x['rps']:.0f}/{x['p99_ms']:.2f}" for x in results[mode])
        print(f"{mode:>13} {rps:9.0f} {p99:8.2f}  {rel:>9}   {rounds}")
        summary[mode] = {"rps": rps, "p99_ms": p99, "rounds": results[mode]}
    out = {"bench": "wal", "at": datetime.now(UTC).isoformat(), "conns": args.conns, "modes": summary}
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (RESULTS / f"wal_bench-{stamp}.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
