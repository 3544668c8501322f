"""Subprocess plumbing shared by the benchmark scripts: process groups that are always cleaned up, CPU pinning,
readiness checks, tiny HTTP helpers, and registering the benchmark key in the gateway's key store."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG = Path("bench/gateway.yaml")  # relative to ROOT: its data dir (bench/results/data) is relative too
RESULTS = ROOT / "bench" / "results"
BENCH_KEY = "sk-bench-1234"
MOCK_PORT = 18001
GATEWAY_PORT = 18500
BARE_PORT = 18600
PATH = "/v1/chat/completions"

# Limits on the benchmark key: high enough never to refuse a call, but set, so the gateway's budget and rate
# checks run on every call (the "full path": auth, limits, pricing, event log).
KEY_LIMITS: dict[str, Any] = {"budget_usd": 1_000_000.0, "rpm": 100_000_000, "tpm": 1_000_000_000}


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


class Procs:
    """Every subprocess runs in its own session (process group); ``stop_all`` kills each group it started."""

    def __init__(self) -> None:
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self,
        name: str,
        cmd: list[str],
        *,
        env: dict[str, str] | None = None,
        logfile: Path | None = None,
        stdout: int | None = None,
    ) -> subprocess.Popen[bytes]:
        out: Any = stdout
        if logfile is not None:
            logfile.parent.mkdir(parents=True, exist_ok=True)
            out = open(logfile, "wb")  # noqa: SIM115 - closed when the process is stopped
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if logfile is not None else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        if logfile is not None:
            out.close()  # the child holds its own descriptor
        self.running.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
        self.running = [(n, p) for n, p in self.running if p is not proc]
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the gateway flushes its events on SIGTERM
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        # anything the leader left behind in its group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for _name, proc in reversed(list(self.running)):
            self.stop(proc)


def pin(cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu)] if cpu is not None else []


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def http(
    method: str,
    url: str,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body.encode() if body else None, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def wait_ready(url: str, proc: subprocess.Popen[bytes], name: str, logfile: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} at start; log:\n{tail(logfile)}")
        with contextlib.suppress(OSError):
            status, _ = http("GET", url, timeout=1.0)
            if status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{name} not ready after {timeout:.0f}s; log:\n{tail(logfile)}")


def register_key(config: Path = CONFIG) -> Path:
    """Register sk-bench-1234 in the key store of ``config`` (idempotent) and give it (unreachable) limits."""
    sys.path.insert(0, str(ROOT))
    from contracts.settings import load_settings
    from gateway.keys import KeyStore, hash_key

    settings = load_settings(config)
    path = settings.data.gateway_db_path
    store = KeyStore(path)
    store.add_existing(BENCH_KEY, "bench")
    try:  # the key-store API is evolving; without limits the run still works, it just checks less
        store.update("key_" + hash_key(BENCH_KEY)[:16], **KEY_LIMITS)
    except Exception as exc:  # noqa: BLE001
        log(f"could not set limits on {BENCH_KEY} ({type(exc).__name__}: {exc}); the limit checks may not run")
    return path


def apex_cmd() -> list[str]:
    apex = ROOT / ".venv" / "bin" / "apex"
    return [str(apex)] if apex.exists() else [sys.executable, "-m", "contracts.console"]


def start_fake_provider(procs: Procs, cpu: int | None, logname: str = "fake_provider.log") -> subprocess.Popen[bytes]:
    logfile = RESULTS / "logs" / logname
    proc = procs.start(
        "fake-provider",
        [*pin(cpu), sys.executable, "-m", "sandbox.fake_provider", "--port", str(MOCK_PORT)],
        logfile=logfile,
    )
    wait_ready(f"http://127.0.0.1:{MOCK_PORT}/health", proc, "fake provider", logfile)
    return proc


def start_gateway(
    procs: Procs,
    transport: str,
    cpu: int | None,
    *,
    config: Path = CONFIG,
    logname: str | None = None,
) -> subprocess.Popen[bytes]:
    env = dict(os.environ, APEX_GATEWAY__UPSTREAM_TRANSPORT=transport, PYTHONUNBUFFERED="1")
    logfile = RESULTS / "logs" / (logname or f"gateway-{transport}.log")
    cmd = [*apex_cmd(), "gateway", "--config", str(config), "--port", str(GATEWAY_PORT), "--log-level", "warning"]
    proc = procs.start(f"gateway-{transport}", [*pin(cpu), *cmd], env=env, logfile=logfile)
    wait_ready(f"http://127.0.0.1:{GATEWAY_PORT}/health", proc, f"gateway ({transport})", logfile)
    return proc


def start_bare_proxy(procs: Procs, cpu: int | None) -> subprocess.Popen[bytes]:
    logfile = RESULTS / "logs" / "bare_proxy.log"
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "bare_proxy.py"),
        "--port",
        str(BARE_PORT),
        "--upstream",
        f"http://127.0.0.1:{MOCK_PORT}/v1",
    ]
    proc = procs.start("bare-proxy", [*pin(cpu), *cmd], env=dict(os.environ, PYTHONUNBUFFERED="1"), logfile=logfile)
    wait_ready(f"http://127.0.0.1:{BARE_PORT}/health", proc, "bare proxy", logfile)
    return proc


def gateway_health(gateway: str) -> dict[str, Any]:
    status, raw = http("GET", f"{gateway}/health")
    if status != 200:
        raise RuntimeError(f"gateway /health answered {status}")
    return json.loads(raw)


def events_accepted(gateway: str) -> int:
    return int(gateway_health(gateway)["events"]["accepted"])


def install_signal_handlers() -> None:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so the ``finally`` blocks stop every process group we started."""

    def _raise(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored (`cmd &`)
    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGHUP, _raise)


def run_guarded(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a bench with signal handling; every subprocess is stopped whatever happens (exit 130 / 1)."""
    install_signal_handlers()
    try:
        return run(args)
    except KeyboardInterrupt:
        log("interrupted; all subprocesses stopped")
        return 130
    except RuntimeError as exc:
        log(f"FAILED: {exc}")
        return 1
