"""Apex gateway benchmark: what the gateway adds on top of a fast local OpenAI-compatible upstream.

One run starts the fake provider (``python -m sandbox.fake_provider --port 18001``), the bare pass-through proxy
(``bench/bare_proxy.py --port 18600``: the gateway's stack, nothing else) and the gateway (``apex gateway --config
bench/gateway.yaml --port 18500``) as subprocesses in their own process groups, then measures:

* non-streaming chat completions with a small realistic body, direct to the fake provider, through the bare
  proxy and through the gateway, at 1 and 32 connections: req/s, p50, p99;
* the product targets: full path (gateway) ÷ bare throughput at c=32 (≥ 70 %), and the latency the gateway adds
  over the bare proxy at c=1 (p50 ≤ 0.5 ms, p99 ≤ 1.5 ms), each marked PASS or MISS. Bare and gateway are
  measured in ``--rounds`` rounds (default 3) that alternate which goes first, and each verdict uses the median
  round: single measurements on a shared VM drift by +-10 % within a minute;
* streaming (``stream: true``): time to first token and total time, direct / bare / gateway, sequentially and at
  8 concurrent streams (a Python aiohttp client in its own process, bench/_stream.py);
* the gateway's upstream transport, aiohttp vs httpx (the gateway is restarted between them).

Load comes from ``wrk`` (``apt-get install -y wrk``) when it is on PATH, else from a Python/aiohttp generator
run in its own process. On a machine with >= 2 cores, the gateway and the bare proxy are pinned to one core and
the fake provider and the load generators to another (``--no-pin`` turns that off): their figures are for one core.

Every response status is checked (wrk counts status >= 400 and socket errors; streams must end in [DONE]; the
gateway's event count must match the requests sent); a run with errors says so loudly and exits 1. A missed
target is reported (MISS) but does not change the exit status. The last stdout line is one JSON object with all
figures; it is also written to bench/results/.

    .venv/bin/python bench/gateway_bench.py                      # full run, ~5 min
    .venv/bin/python bench/gateway_bench.py --duration 3         # quick run
    .venv/bin/python bench/gateway_bench.py --register-key-only  # register sk-bench-1234 for manual runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _procs import (  # noqa: E402
    BARE_PORT,
    BENCH_KEY,
    GATEWAY_PORT,
    MOCK_PORT,
    PATH,
    RESULTS,
    ROOT,
    Procs,
    events_accepted,
    http,
    log,
    port_in_use,
    register_key,
    run_guarded,
    start_bare_proxy,
    start_fake_provider,
    start_gateway,
)
from _stream import run_stream  # noqa: E402
from _wrk import BODY, HEADERS, STREAM_BODY, loadgen_main, run_load, wrk_script  # noqa: E402

# The product targets (the issue): full path vs a bare pass-through on the same stack, in the same run.
TARGET_RPS_RATIO = 0.70  # gateway c=32 throughput ≥ 70 % of the bare proxy's
TARGET_ADDED_P50_MS = 0.5  # at c=1, gateway p50 - bare p50
TARGET_ADDED_P99_MS = 1.5  # at c=1, gateway p99 - bare p99


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "log", "--oneline", "-1"], capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "gateway"], capture_output=True, text=True
        )
        return out.stdout.strip() + (" (+ uncommitted changes in gateway/)" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def sanity_check(url: str, name: str) -> None:
    """One request before the load: it must be a 200 with a chat completion, or the run is meaningless."""
    status, raw = http("POST", url, BODY, HEADERS)
    try:
        ok = status == 200 and json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        ok = False
    if not ok:
        raise RuntimeError(f"{name}: sanity request got HTTP {status}: {raw[:300]!r}")
    status, raw = http("POST", url, STREAM_BODY, HEADERS)
    if status != 200 or not raw.rstrip().endswith(b"data: [DONE]"):
        raise RuntimeError(f"{name}: streaming sanity request got HTTP {status}: {raw[-300:]!r}")


def measure(
    procs: Procs,
    name: str,
    url: str,
    conns: int,
    args: argparse.Namespace,
    *,
    use_wrk: bool,
    cpu: int | None,
    gateway: str | None = None,
    server: subprocess.Popen[bytes] | None = None,
    home_cpu: int | None = None,
) -> dict[str, Any]:
    before = events_accepted(gateway) if gateway else 0
    # c=1 is a serial chain (client -> server -> upstream and back): with every hop on one core it measures the
    # CPU time each hop adds, without the millisecond wake-ups of an idle vCPU that a cross-core hand-off costs
    # on this VM (they dominate p90/p99 otherwise; see bench/README.md). --c1-split-cores keeps the 2-core layout.
    one_core = conns == 1 and server is not None and cpu is not None and not args.c1_split_cores
    if one_core:
        repin(server, cpu)
    try:
        warm = run_load(procs, url, conns, args.warmup, use_wrk=use_wrk, cpu=cpu) if args.warmup > 0 else None
        res = run_load(procs, url, conns, args.duration, use_wrk=use_wrk, cpu=cpu)
    finally:
        if one_core:
            repin(server, home_cpu)
    res["one_core"] = one_core
    res["name"] = name
    res["warmup_non2xx"] = warm["non2xx"] + warm["socket_errors"] if warm else 0
    if gateway:
        time.sleep(0.2)  # the last in-flight calls finish recording
        sent = res["requests"] + (warm["requests"] if warm else 0)
        res["events_recorded"] = events_accepted(gateway) - before
        # wrk drops the calls in flight when it stops: the gateway may record up to `conns` more per run
        res["events_ok"] = sent <= res["events_recorded"] <= sent + 2 * conns
    log(
        f"{name:<22} c={conns:<3} {res['rps']:>9.1f} req/s  p50 {res['p50_ms']:.2f} ms"
        f"  p99 {res['p99_ms']:.2f} ms  non-2xx {res['non2xx']}  socket errors {res['socket_errors']}"
    )
    return res


def repin(proc: subprocess.Popen[bytes], cpu: int | None) -> None:
    """Move a running server, every thread of it, to ``cpu``."""
    if cpu is not None and proc.poll() is None:
        subprocess.run(["taskset", "-a", "-pc", str(cpu), str(proc.pid)], check=True, capture_output=True)


def measure_stream(
    procs: Procs, name: str, url: str, n: int, conc: int, *, cpu: int | None, gateway: str | None = None
) -> dict[str, Any]:
    before = events_accepted(gateway) if gateway else 0
    warmup = 20
    res = run_stream(procs, url, n, conc, cpu=cpu, warmup=warmup)
    res["name"] = name
    if gateway:
        time.sleep(0.2)
        sent = res["requests"] + warmup + res["errors"]
        res["events_recorded"] = events_accepted(gateway) - before
        res["events_ok"] = res["events_recorded"] == sent
    log(
        f"stream {name:<15} c={conc:<2} TTFT p50 {res['ttft_p50_ms']:.2f} ms p99 {res['ttft_p99_ms']:.2f} ms"
        f"  total p50 {res['total_p50_ms']:.2f} ms p99 {res['total_p99_ms']:.2f} ms  errors {res['errors']}"
    )
    return res


def run(args: argparse.Namespace) -> int:
    os.chdir(ROOT)
    use_wrk = shutil.which("wrk") is not None and not args.python_loadgen
    if not use_wrk:
        log(
            "wrk not found on PATH (install: apt-get install -y wrk) or --python-loadgen given: using "
            "the Python aiohttp load generator in its own process. It tops out far lower than wrk; on a "
            "small machine the c=32 figures then measure the generator as much as the gateway."
        )
    pin = not args.no_pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    gw_cpu, side_cpu = (0, 1) if pin else (None, None)
    log(
        f"load generator: {'wrk' if use_wrk else 'python/aiohttp'}; pinning: "
        + ("gateway / bare proxy -> cpu0, fake provider + load generator -> cpu1" if pin else "off")
    )
    for port in (MOCK_PORT, GATEWAY_PORT, BARE_PORT):
        if port_in_use(port):
            log(f"port {port} is already in use: stop what listens there (e.g. an earlier manual run) first")
            return 2

    # fresh event files each run (they are the gateway's, under the git-ignored bench/results/data)
    shutil.rmtree(RESULTS / "data" / "events", ignore_errors=True)
    db = register_key()
    log(f"key {BENCH_KEY} registered in {db}")
    commit = git_commit()
    log(f"gateway code: {commit}")

    procs = Procs()
    results: dict[str, Any] = {}
    streams: dict[str, Any] = {}
    c = args.connections
    try:
        start_fake_provider(procs, side_cpu)
        direct = f"http://127.0.0.1:{MOCK_PORT}{PATH}"
        bare = f"http://127.0.0.1:{BARE_PORT}{PATH}"
        gw = f"http://127.0.0.1:{GATEWAY_PORT}"
        sanity_check(direct, "fake provider")
        for n in (1, c):
            results[f"direct_c{n}"] = measure(procs, "direct", direct, n, args, use_wrk=use_wrk, cpu=side_cpu)

        bare_proc = start_bare_proxy(procs, gw_cpu)
        sanity_check(bare, "bare proxy")

        for transport in ("aiohttp", "httpx"):
            proc = start_gateway(procs, transport, gw_cpu)
            try:
                sanity_check(gw + PATH, f"gateway ({transport})")
                if transport == "aiohttp":
                    # The targets compare the gateway with the bare proxy in rounds that alternate which goes first;
                    # the verdicts use the median round, so a drift in this shared VM's speed during one
                    # measurement (seen: +-10 % within a minute) neither makes nor breaks a target.
                    pair = (
                        ("bare", "bare proxy", bare, bare_proc, None),
                        ("gateway_aiohttp", "gateway (aiohttp)", gw + PATH, proc, gw),
                    )
                    for r in range(1, args.rounds + 1):
                        for n in (1, c):
                            for key, name, url, server, g in pair if r % 2 else pair[::-1]:
                                results[f"{key}_c{n}_r{r}"] = measure(
                                    procs,
                                    f"{name} #{r}",
                                    url,
                                    n,
                                    args,
                                    use_wrk=use_wrk,
                                    cpu=side_cpu,
                                    gateway=g,
                                    server=server,
                                    home_cpu=gw_cpu,
                                )
                else:
                    for n in (1, c):
                        results[f"gateway_{transport}_c{n}"] = measure(
                            procs,
                            f"gateway ({transport})",
                            gw + PATH,
                            n,
                            args,
                            use_wrk=use_wrk,
                            cpu=side_cpu,
                            gateway=gw,
                            server=proc,
                            home_cpu=gw_cpu,
                        )
                if transport == "aiohttp" and args.stream_requests > 0:
                    # the bare proxy idles on the gateway's core meanwhile; each target is measured alone
                    for conc in (1, args.stream_concurrency):
                        for key, name, url, g in (
                            ("direct", "direct", direct, None),
                            ("bare", "bare proxy", bare, None),
                            ("gateway", "gateway", gw + PATH, gw),
                        ):
                            streams[f"{key}_c{conc}"] = measure_stream(
                                procs, name, url, args.stream_requests, conc, cpu=side_cpu, gateway=g
                            )
            finally:
                procs.stop(proc)
            if proc.returncode not in (0, -signal.SIGTERM):
                log(f"gateway ({transport}) exited with {proc.returncode}; see {RESULTS / 'logs'}")
        procs.stop(bare_proc)
    finally:
        procs.stop_all()

    return report(results, streams, args, use_wrk=use_wrk, pin=pin, commit=commit)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(
    results: dict[str, Any],
    streams: dict[str, Any],
    args: argparse.Namespace,
    *,
    use_wrk: bool,
    pin: bool,
    commit: str,
) -> int:
    c = args.connections
    d1 = results["direct_c1"]
    rounds = range(1, args.rounds + 1)

    def per_round(fn: Any) -> list[float]:
        return [round(fn(r), 3) for r in rounds]

    def g(n: int, r: int) -> dict[str, Any]:
        return results[f"gateway_aiohttp_c{n}_r{r}"]

    def b(n: int, r: int) -> dict[str, Any]:
        return results[f"bare_c{n}_r{r}"]

    ratios = per_round(lambda r: g(c, r)["rps"] / b(c, r)["rps"] if b(c, r)["rps"] else 0.0)
    added_p50 = per_round(lambda r: g(1, r)["p50_ms"] - b(1, r)["p50_ms"])
    added_p99 = per_round(lambda r: g(1, r)["p99_ms"] - b(1, r)["p99_ms"])
    ratio = statistics.median(ratios)
    added_bare = {"p50_ms": statistics.median(added_p50), "p99_ms": statistics.median(added_p99)}
    added_direct = {
        "p50_ms": statistics.median(per_round(lambda r: g(1, r)["p50_ms"] - d1["p50_ms"])),
        "p99_ms": statistics.median(per_round(lambda r: g(1, r)["p99_ms"] - d1["p99_ms"])),
    }
    rps_gc = statistics.median(g(c, r)["rps"] for r in rounds)
    rps_bc = statistics.median(b(c, r)["rps"] for r in rounds)
    targets = {
        f"throughput_ratio_c{c}": {
            "value": ratio,
            "target": f">= {TARGET_RPS_RATIO}",
            "pass": ratio >= TARGET_RPS_RATIO,
        },
        "added_p50_ms_c1": {
            "value": added_bare["p50_ms"],
            "target": f"<= {TARGET_ADDED_P50_MS}",
            "pass": added_bare["p50_ms"] <= TARGET_ADDED_P50_MS,
        },
        "added_p99_ms_c1": {
            "value": added_bare["p99_ms"],
            "target": f"<= {TARGET_ADDED_P99_MS}",
            "pass": added_bare["p99_ms"] <= TARGET_ADDED_P99_MS,
        },
    }
    gh = results[f"gateway_httpx_c{c}"]
    transport = {
        "aiohttp_rps": rps_gc,
        "httpx_rps": gh["rps"],
        "aiohttp_over_httpx": round(rps_gc / gh["rps"], 2) if gh["rps"] else None,
    }
    problems = []
    for key, r in results.items():
        if r["non2xx"] or r["socket_errors"] or r["warmup_non2xx"]:
            problems.append(
                f"{key}: {r['non2xx']} non-2xx, {r['socket_errors']} socket errors, "
                f"{r['warmup_non2xx']} errors in warm-up"
            )
        if r.get("events_ok") is False:
            problems.append(
                f"{key}: the gateway recorded {r['events_recorded']} events for {r['requests']} "
                "measured requests (+ warm-up)"
            )
    for key, s in streams.items():
        if s["errors"]:
            problems.append(f"stream {key}: {s['errors']} streams failed (non-200 or no [DONE])")
        if s.get("events_ok") is False:
            problems.append(f"stream {key}: the gateway recorded {s['events_recorded']} events for the streams sent")

    print()
    print(
        f"Apex gateway benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M UTC}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"load: {'wrk' if use_wrk else 'python'}"
        f", {args.duration:g} s per measurement, pinned: {'yes' if pin else 'no'}"
    )
    print(f"gateway code: {commit}")
    print(f"non-streaming POST /v1/chat/completions, ~{len(BODY)}-byte body")
    if pin and not args.c1_split_cores:
        print("c=1 rows: client, server and fake provider share cpu1; c>1 rows: server on cpu0, the rest on cpu1")
    print()
    hdr = f"{'target':<22} {'conns':>5} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} "
    hdr += f"{'non-2xx':>8} {'sock err':>8}"
    print(hdr)
    print("-" * len(hdr))
    for r in results.values():
        print(
            f"{r['name']:<22} {r['conns']:>5} {r['rps']:>10.1f} {r['p50_ms']:>9.2f} {r['p99_ms']:>9.2f} "
            f"{r['non2xx']:>8} {r['socket_errors']:>8}"
        )
    if streams:
        print()
        print(f"streaming (stream: true), {args.stream_requests} streams per row after 20 warm-up, Python client")
        shdr = f"{'target':<22} {'conc':>5} {'streams/s':>10} {'TTFT p50':>9} {'TTFT p99':>9} "
        shdr += f"{'total p50':>10} {'total p99':>10} {'errors':>7}"
        print(shdr)
        print("-" * len(shdr))
        for s in streams.values():
            print(
                f"{s['name']:<22} {s['conc']:>5} {s['streams_per_s']:>10.1f} {s['ttft_p50_ms']:>9.2f} "
                f"{s['ttft_p99_ms']:>9.2f} {s['total_p50_ms']:>10.2f} {s['total_p99_ms']:>10.2f} {s['errors']:>7}"
            )
    print()
    t = targets
    print(
        f"targets (full path = gateway, aiohttp transport, vs the bare proxy, same run; median of {args.rounds} "
        "alternating rounds, each round's value in brackets):"
    )
    print(
        f"  throughput at c={c}: {ratio:.0%} [{', '.join(f'{x:.0%}' for x in ratios)}]"
        f" (target >= {TARGET_RPS_RATIO:.0%})  {_verdict(t[f'throughput_ratio_c{c}']['pass'])}"
    )
    print(
        f"  added p50 at c=1: {added_bare['p50_ms']:+.2f} ms [{', '.join(f'{x:+.2f}' for x in added_p50)}]"
        f" (target <= {TARGET_ADDED_P50_MS} ms)  {_verdict(t['added_p50_ms_c1']['pass'])}"
    )
    print(
        f"  added p99 at c=1: {added_bare['p99_ms']:+.2f} ms [{', '.join(f'{x:+.2f}' for x in added_p99)}]"
        f" (target <= {TARGET_ADDED_P99_MS} ms)  {_verdict(t['added_p99_ms_c1']['pass'])}"
    )
    if streams:
        s = args.stream_concurrency
        for conc in (1, s):
            g, b = streams[f"gateway_c{conc}"], streams[f"bare_c{conc}"]
            print(
                f"  streaming c={conc}: TTFT added vs bare p50 {g['ttft_p50_ms'] - b['ttft_p50_ms']:+.2f} ms, "
                f"p99 {g['ttft_p99_ms'] - b['ttft_p99_ms']:+.2f} ms (no target)"
            )
    print(
        f"added latency at c=1 vs direct (gateway aiohttp - direct): p50 {added_direct['p50_ms']:+.2f} ms, "
        f"p99 {added_direct['p99_ms']:+.2f} ms"
    )
    print(
        f"transport at c={c}: aiohttp {rps_gc:.1f} req/s (median round; bare {rps_bc:.1f}) vs httpx "
        f"{gh['rps']:.1f} req/s "
        f"(x{transport['aiohttp_over_httpx']})"
    )
    if problems:
        print()
        print("!" * 78)
        print("!!! ERRORS DURING LOAD — these figures are NOT valid:")
        for p in problems:
            print(f"!!!   {p}")
        print("!" * 78)
    else:
        print("all responses were 2xx (streams ended in [DONE]); the gateway recorded one event per request")

    summary = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {"cores": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()},
        "commit": commit,
        "load_generator": "wrk" if use_wrk else "python-aiohttp",
        "pinned": pin,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "per_round": {f"throughput_ratio_c{c}": ratios, "added_p50_ms_c1": added_p50, "added_p99_ms_c1": added_p99},
        "warmup_s": args.warmup,
        "body_bytes": len(BODY),
        "results": results,
        "streams": streams,
        "added_latency_c1": added_direct,
        "added_latency_vs_bare_c1": added_bare,
        "targets": targets,
        "targets_met": all(v["pass"] for v in targets.values()),
        f"transport_c{c}": transport,
        "ok": not problems,
        "problems": problems,
    }
    line = json.dumps(summary, separators=(",", ":"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"gateway_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json").write_text(line + "\n")
    print(line)
    return 0 if not problems else 1


def main() -> int:
    parser = argparse.ArgumentParser(description="Apex gateway benchmark (see bench/README.md).")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each measurement")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating bare/gateway rounds for the targets; the verdicts use the median (default 3)",
    )
    parser.add_argument("--connections", type=int, default=32, help="connections for the concurrent runs")
    parser.add_argument(
        "--stream-requests", type=int, default=300, help="streams per streaming row (default 300; 0 skips them)"
    )
    parser.add_argument("--stream-concurrency", type=int, default=8, help="concurrent streams (default 8)")
    parser.add_argument("--python-loadgen", action="store_true", help="use the Python generator even if wrk exists")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs with taskset")
    parser.add_argument(
        "--c1-split-cores",
        action="store_true",
        help="keep the server on its own core for the c=1 rows too (default: all c=1 hops share one core)",
    )
    parser.add_argument(
        "--register-key-only",
        action="store_true",
        help=f"register {BENCH_KEY} for bench/gateway.yaml, write the wrk scripts, and exit",
    )
    parser.add_argument("--loadgen", nargs=3, metavar=("URL", "CONNS", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.loadgen:
        loadgen_main(args.loadgen[0], int(args.loadgen[1]), float(args.loadgen[2]))
        return 0
    if args.register_key_only:
        os.chdir(ROOT)
        db = register_key()
        lua, mix = wrk_script(), wrk_script(mix=True)
        print(f"registered {BENCH_KEY} in {db}; wrk scripts: {lua.relative_to(ROOT)}, {mix.relative_to(ROOT)}")
        return 0

    return run_guarded(run, args)


if __name__ == "__main__":
    sys.exit(main())
