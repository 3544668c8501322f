"""Run `apex gateway` as a real child process for tests that need separate processes.

A port picked by binding port 0 and closing it can be taken again before the child binds it (another
process's listener, or an outgoing connection's local port), so a child that exits on its own during start-up
is started again on a fresh port; anything else that keeps it from answering /health fails the test with the
child's own output, instead of a bare "did not start".
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.gateway.conftest import free_port


@dataclass
class GatewayProcess:
    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 20) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def start_gateway_process(
    config: Path, log: Path, *extra: str, timeout: float = 60, attempts: int = 3
) -> GatewayProcess:
    apex = Path(sys.executable).with_name("apex")
    for attempt in range(1, attempts + 1):
        port = free_port()
        path = log.with_name(f"{log.stem}.{attempt}{log.suffix}") if attempt > 1 else log
        with path.open("wb") as out:
            proc = subprocess.Popen(
                [str(apex), "gateway", "--config", str(config), "--port", str(port), *extra],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        gw = GatewayProcess(proc, port, path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _healthy(gw.url):
                return gw
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        if proc.poll() is None:
            gw.stop()
            raise RuntimeError(f"gateway on port {port} did not answer /health in {timeout:.0f} s:\n{gw.output()}")
        if "address already in use" not in gw.output().lower() or attempt == attempts:
            raise RuntimeError(f"gateway on port {port} exited with {proc.returncode}:\n{gw.output()}")
    raise AssertionError("unreachable")
