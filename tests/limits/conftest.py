"""Real gateways on loopback (uvicorn in a thread, simulated provider) with direct access to their state."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from contracts.settings import load_settings
from gateway.app import create_app
from gateway.state import GatewayState
from tests.gateway.conftest import free_port


def limits_config(data_dir: Path, **limits: Any) -> dict[str, Any]:
    return {
        "gateway": {"key_cache_seconds": 0},
        "data": {"dir": str(data_dir)},
        "events": {"flush_seconds": 0.2},
        "limits": limits,
        "providers": [{"name": "sim", "kind": "simulated", "latency_scale": 0.02}],
        "models": [{"name": "gpt-4o-mini", "provider": "sim"}, {"name": "sim-unpriced", "provider": "sim"}],
    }


@dataclass
class Gateway:
    server: uvicorn.Server
    thread: threading.Thread
    port: int
    state: GatewayState

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.should_exit = True
            self.thread.join(30)


def wait_healthy(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"gateway at {url} did not start")


@pytest.fixture
def start_gateway(tmp_path) -> Iterator:
    started: list[Gateway] = []

    def start(data_dir: Path | None = None, **limits: Any) -> Gateway:
        path = tmp_path / f"apex{len(started)}.yaml"
        path.write_text(yaml.safe_dump(limits_config(data_dir or tmp_path / "data", **limits)))
        app = create_app(load_settings(path))
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        gw = Gateway(server, thread, port, app.state.apex)
        started.append(gw)
        wait_healthy(gw.url)
        return gw

    yield start
    for gw in started:
        gw.stop()
