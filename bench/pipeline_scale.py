"""Pipeline scale bench: N synthetic events -> full dbt build -> one more hour -> incremental build.

Both timed builds run the models and seeds only (``dbt build --exclude resource_type:test resource_type:unit_test``);
the data tests are timed separately after the full build and reported, not counted in the goal. Peak RSS is the
dbt process tree's (``resource.getrusage(RUSAGE_CHILDREN)`` inside a per-phase wrapper process).
Goal on 2 cores: 10M events full <= 60 s, incremental <= 5 s. The last line printed is one JSON object.

    .venv/bin/python bench/pipeline_scale.py --events 10_000_000 [--keep DIR] [--skip-tests]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.synthetic_events import write_synthetic_events  # noqa: E402
from sandbox.validation_runs import runs_dir_for, synthetic_validation_runs, write_validation_runs  # noqa: E402

DBT_DIR = ROOT / "dbt"
START = datetime(2026, 1, 5, tzinfo=UTC)
HOURS = 24
CHUNK = 2_000_000
MODELS_ONLY = ("build", "--exclude", "resource_type:test", "resource_type:unit_test")
# Runs a command and reports its wall time and the peak RSS of its process tree, isolated per phase.
_WRAPPER = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter(); r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "print(json.dumps({'rc': r.returncode, 'seconds': time.perf_counter() - t,"
    " 'peak_rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 'tail': r.stdout[-3000:]}))\n"
)


def _dbt(args: tuple[str, ...], env: dict[str, str]) -> dict[str, float]:
    dbt = str(Path(sys.executable).with_name("dbt"))
    cmd = [sys.executable, "-c", _WRAPPER, dbt, *args, "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise SystemExit(f"dbt {' '.join(args)} failed:\n{result['tail']}")
    return {"seconds": round(result["seconds"], 2), "peak_rss_mb": round(result["peak_rss_mb"], 1)}


def _write_events(events_dir: Path, n: int, start: datetime, hours: int, seed: int) -> float:
    began = time.perf_counter()
    for i, lo in enumerate(range(0, n, CHUNK)):
        write_synthetic_events(events_dir, min(CHUNK, n - lo), seed=seed + i, start=start, hours=hours)
    return round(time.perf_counter() - began, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=lambda s: int(s.replace("_", "")), default=10_000_000)
    parser.add_argument("--keep", type=Path, help="write into this directory and keep it")
    parser.add_argument("--skip-tests", action="store_true", help="do not time the data tests")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="apex-scale-") as tmp:
        data = (args.keep or Path(tmp)).resolve()
        events_dir, runs_dir = data / "events", runs_dir_for(data)
        gen_seconds = _write_events(events_dir, args.events, START, HOURS, seed=1)
        write_validation_runs(runs_dir, synthetic_validation_runs(("cust_acme", "cust_globex"), START, hours=HOURS))
        env = {
            **os.environ,
            "APEX_EVENTS_DIR": str(events_dir),
            "APEX_VALIDATION_RUNS_DIR": str(runs_dir),
            "APEX_WAREHOUSE": str(data / "warehouse.duckdb"),
            "DBT_TARGET_PATH": str(data / "dbt_target"),
            "DBT_LOG_PATH": str(data / "dbt_logs"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        _dbt(("parse",), env)  # parse once so neither timed build pays for it
        full = _dbt((*MODELS_ONLY, "--full-refresh"), env)
        print(f"full build (models+seeds), {args.events:,} events: {full}", file=sys.stderr)
        tests = None if args.skip_tests else _dbt(("test",), env)
        if tests:
            print(f"data + unit tests after the full build: {tests}", file=sys.stderr)
        hour_events = max(1, args.events // HOURS)
        _write_events(events_dir, hour_events, START + timedelta(hours=HOURS), 1, seed=10_000)
        incremental = _dbt(MODELS_ONLY, env)
        print(f"incremental build, one new hour of {hour_events:,} events: {incremental}", file=sys.stderr)
        print(
            json.dumps(
                {
                    "bench": "pipeline_scale",
                    "events": args.events,
                    "incremental_hour_events": hour_events,
                    "cores": os.cpu_count(),
                    "generate_seconds": gen_seconds,
                    "full_build_seconds": full["seconds"],
                    "full_build_peak_rss_mb": full["peak_rss_mb"],
                    "tests_seconds": tests and tests["seconds"],
                    "incremental_build_seconds": incremental["seconds"],
                    "incremental_build_peak_rss_mb": incremental["peak_rss_mb"],
                    "scope": "dbt build of models+seeds (tests excluded); tests timed separately",
                }
            )
        )


if __name__ == "__main__":
    main()
