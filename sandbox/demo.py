"""``apex demo``: the whole product path on one machine, offline, with no API keys.

train the routing policy (Dagster, once) → gateway (simulated providers) → workload via the openai SDK, with
every optimizer in play → graceful SIGTERM (events flushed) → materialize every Dagster asset (dbt marts +
checks) → leave ``dagster dev`` and the dashboard running.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from contracts.event_files import event_days
from contracts.ids import new_id
from contracts.settings import ConfigError, Settings, load_settings
from contracts.validation_runs import ValidationRun, runs_dir_for, write_validation_runs
from gateway.keys import KeyStore
from sandbox.services import port_in_use, start_service, stop_all, wait_http
from sandbox.workload import CUSTOMERS, run_workload

__all__ = ["REPO_ROOT", "count_events", "run_demo"]

REPO_ROOT = Path(__file__).resolve().parent.parent
console = Console()


def count_events(events_dir: Path) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in events_dir.glob("date=*/hour=*/*.parquet"))


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _child_env(settings: Settings, config: Path | None) -> dict[str, str]:
    env = {
        "APEX_DATA__DIR": str(settings.data.dir.resolve()),
        "DAGSTER_HOME": str((settings.data.dir / "dagster_home").resolve()),
        "PYTHONUNBUFFERED": "1",
    }
    if config is not None:
        env["APEX_CONFIG"] = str(Path(config).resolve())
    return env


STEPS = 6


def _step(n: int, text: str) -> None:
    console.print(f"\n[bold cyan][{n}/{STEPS}][/bold cyan] {text}")


def _dagster(args: list[str], env: dict[str, str], log_path: Path) -> int:
    with open(log_path, "wb") as log:
        proc = subprocess.run(
            [_bin("dagster"), *args, "-m", "dagster_project.definitions"],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return proc.returncode


def _train_routing_policy(settings: Settings, env: dict[str, str], data_dir: Path) -> bool:
    """The gateway's ``apex/auto`` needs a policy: materialize the optimizer assets unless one exists."""
    policy = settings.routing_policy_path
    if not settings.optimizers.auto_routing.enabled:
        console.print("  learned routing is not configured (optimizers.auto_routing); skipped")
        return True
    if policy.is_file():
        console.print(f"  using the existing policy {policy} (materialize routing_policy in Dagster to retrain)")
        return True
    log_path = data_dir / "run" / "routing_policy.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with console.status("dagster asset materialize --select routing_feedback,routing_policy ..."):
        code = _dagster(["asset", "materialize", "--select", "routing_feedback,routing_policy"], env, log_path)
    if code != 0 or not policy.is_file():
        console.print(f"[red]training the routing policy failed (exit {code}); see {log_path}[/red]")
        return False
    console.print(f"  policy written to {policy}")
    return True


def _record_replay(
    settings: Settings, data_dir: Path, by_customer: dict[str, int], start: datetime, end: datetime
) -> list[ValidationRun]:
    """The workload replay is a real validation run of the gateway: meter it (BVM) with its measured time,
    one run per customer, each for that customer's share of the requests (so the machine is billed once)."""
    total = sum(by_customer.values()) or 1
    runs = [
        ValidationRun(
            run_id=new_id(),
            customer_id=customer,
            started_at=start,
            ended_at=start + (end - start) * (n / total),
            cpu_cores=os.cpu_count() or 1,
            gpus=0,
            instance_type=settings.sandbox.instance_type,
            validated="workload_replay:demo",
            outcome="passed",
        )
        for customer, n in sorted(by_customer.items())
    ]
    write_validation_runs(runs_dir_for(data_dir), runs, writer_id="demo")
    return runs


def run_demo(config: Path | None = None, *, requests: int = 400, serve: bool = True) -> int:
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    data_dir = settings.data.dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = _child_env(settings, config)
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    if stopped := stop_all(data_dir):
        console.print(f"stopped the previous demo's {', '.join(stopped)}")
    gw_port = settings.gateway.port
    busy = [p for p in (gw_port, settings.ports.dagster, settings.ports.dashboard) if port_in_use(p)]
    if busy:
        console.print(
            f"[red]port(s) {busy} are in use by another program.[/red] Stop it, or set other ports "
            "(APEX_GATEWAY__PORT, APEX_PORTS__DAGSTER, APEX_PORTS__DASHBOARD) and run again."
        )
        return 1
    t_start = time.monotonic()

    _step(1, "training the learned routing policy (Dagster assets routing_feedback → routing_policy)")
    if not _train_routing_policy(settings, env, data_dir):
        return 1

    _step(2, f"starting the gateway on http://127.0.0.1:{gw_port} with simulated providers")
    before = count_events(settings.data.events_path)
    gw = start_service("gateway", [_bin("apex"), "gateway", "--port", str(gw_port)], data_dir, env=env)
    try:
        wait_http(f"http://127.0.0.1:{gw_port}/health", timeout=60, proc=gw)
    except (RuntimeError, TimeoutError) as exc:
        console.print(f"[red]gateway did not start: {exc}[/red]; see {data_dir / 'run' / 'gateway.log'}")
        stop_all(data_dir)
        return 1
    store = KeyStore(settings.data.gateway_db_path)
    keys = {c: store.create(f"demo-{c}", customer_id=c)[1] for c in CUSTOMERS}

    _step(3, f"sending {requests} calls through it with the openai SDK")
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("workload", total=requests)
        replay_start = datetime.now(UTC)
        result = asyncio.run(
            run_workload(f"http://127.0.0.1:{gw_port}/v1", keys, requests=requests, on_done=lambda: bar.advance(task))
        )
    replay_end = datetime.now(UTC)
    console.print(f"  {result.ok} answered, {result.streamed} streamed, errors: {result.errors or 'none'}")
    runs = _record_replay(settings, data_dir, result.by_customer, replay_start, replay_end)
    console.print(f"  recorded the replay as {len(runs)} metered validation run(s) on {settings.sandbox.instance_type}")

    _step(4, "stopping the gateway gracefully (SIGTERM) so every event is flushed to Parquet")
    os.killpg(gw.pid, signal.SIGTERM)
    code = gw.wait(60)
    (data_dir / "run" / "gateway.pid").unlink(missing_ok=True)
    written = count_events(settings.data.events_path) - before
    console.print(f"  gateway exited with code {code}; {written} events written under {settings.data.events_path}")
    # uvicorn re-raises SIGTERM after its graceful shutdown: dying of that signal is the clean exit
    if code not in (0, -signal.SIGTERM) or written < result.sent:
        console.print(f"[red]expected {result.sent} events; see {data_dir / 'run' / 'gateway.log'}[/red]")
        return 1

    _step(5, "materializing every Dagster asset (raw events → dbt marts, with checks)")
    # apex_all is partitioned by UTC day: one run over the range of days that have event files
    days = event_days(settings.data.events_path)
    tags = {"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]}
    with console.status(f"dagster job execute -j apex_all for {days[0]}..{days[-1]} (dbt build + checks) ..."):
        log_path = data_dir / "run" / "materialize.log"
        code = _dagster(["job", "execute", "-j", "apex_all", "--tags", json.dumps(tags)], env, log_path)
    if code != 0:
        console.print(f"[red]materialization failed (exit {code}); see {log_path}[/red]")
        return 1
    console.print(f"  marts built in {settings.data.warehouse_path}")

    if not serve:
        console.print(f"\n[green]demo finished in {time.monotonic() - t_start:.0f}s[/green] (services not started)")
        return 0
    _step(6, "starting dagster dev and the dashboard")
    dag = start_service(
        "dagster",
        [
            _bin("dagster"),
            "dev",
            "-w",
            str(REPO_ROOT / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(settings.ports.dagster),
        ],
        data_dir,
        env=env,
        cwd=REPO_ROOT,
    )
    dash = start_service(
        "dashboard",
        [
            _bin("streamlit"),
            "run",
            str(REPO_ROOT / "dashboards" / "app.py"),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(settings.ports.dashboard),
            "--browser.gatherUsageStats",
            "false",
        ],
        data_dir,
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        wait_http(f"http://127.0.0.1:{settings.ports.dashboard}/_stcore/health", timeout=90, proc=dash)
        wait_http(f"http://127.0.0.1:{settings.ports.dagster}/server_info", timeout=180, proc=dag)
    except (RuntimeError, TimeoutError) as exc:
        console.print(f"[red]{exc}[/red]; logs are in {data_dir / 'run'}")
        stop_all(data_dir)
        return 1
    console.print(f"""
[green]Demo ready in {time.monotonic() - t_start:.0f}s.[/green]
  Dashboard : http://127.0.0.1:{settings.ports.dashboard}
  Dagster   : http://127.0.0.1:{settings.ports.dagster}
  Stop both : make stop   (or: .venv/bin/apex stop)

Point your own app at Apex:
  .venv/bin/apex keys create --name my-app        # prints a key once
  .venv/bin/apex gateway                          # http://127.0.0.1:{gw_port}/v1
  OpenAI(base_url="http://127.0.0.1:{gw_port}/v1", api_key="<that key>")
Its calls appear in the marts after the next materialization (the sensor picks up new event files).""")
    return 0
