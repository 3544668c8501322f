"""Start, watch and stop the long-running processes the demo leaves behind (each in its own session)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

__all__ = ["group_alive", "port_in_use", "running", "start_service", "stop_all", "stop_service", "wait_http"]


def _run_dir(data_dir: Path) -> Path:
    path = Path(data_dir) / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def start_service(
    name: str,
    cmd: Sequence[str],
    data_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in a new session (so SIGTERM reaches its whole process group), logging to run/<name>.log."""
    run = _run_dir(data_dir)
    log = open(run / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        list(cmd),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    log.close()
    (run / f"{name}.pid").write_text(str(proc.pid))
    return proc


def wait_http(url: str, *, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with code {proc.returncode} before it was ready")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours still answers kill(0); reap it if it is ours
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def group_alive(pgid: int) -> bool:
    """Whether any process of the group started by ``start_service`` is still there."""
    _alive(pgid)  # reaps the leader if it is our zombie child
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_service(name: str, data_dir: Path, *, timeout: float = 20.0) -> bool:
    """SIGTERM the service's whole process group (dagster dev spawns code servers and a daemon), wait for every
    member to go, and SIGKILL whatever is left after ``timeout``."""
    pid_file = _run_dir(data_dir) / f"{name}.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().strip() or 0)
    pid_file.unlink()
    if pid <= 0 or not group_alive(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and group_alive(pid):
        time.sleep(0.1)
    if group_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and group_alive(pid):
            time.sleep(0.1)
    return True


def running(data_dir: Path) -> list[str]:
    run = _run_dir(data_dir)
    return sorted(p.stem for p in run.glob("*.pid") if _alive(int(p.read_text().strip() or 0)))


def stop_all(data_dir: Path) -> list[str]:
    run = _run_dir(data_dir)
    return [p.stem for p in sorted(run.glob("*.pid")) if stop_service(p.stem, data_dir)]
