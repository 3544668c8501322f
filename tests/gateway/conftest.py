"""A real gateway (uvicorn on loopback, in a thread) in front of a local fake OpenAI server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import polars as pl
import pytest
import uvicorn
import yaml

from contracts.settings import Settings, load_settings
from gateway.app import create_app
from gateway.keys import KeyStore
from sandbox.fake_provider import FakeProvider


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def fake_provider() -> Iterator[FakeProvider]:
    fake = FakeProvider(slow_s=1.5).start()
    yield fake
    fake.stop()


def gateway_config(data_dir: Path, fake_url: str, **gateway_overrides: object) -> dict:
    return {
        "gateway": {"key_cache_seconds": 0, **gateway_overrides},
        "data": {"dir": str(data_dir)},
        "events": {"flush_seconds": 0.2},
        "providers": [
            {"name": "sim", "kind": "simulated", "latency_scale": 0.0},
            {"name": "fake", "kind": "openai_compatible", "base_url": fake_url, "timeout_s": 10},
        ],
        "models": [
            {"name": "gpt-4o-mini", "provider": "sim"},
            {"name": "sim-unpriced", "provider": "sim"},
            {"name": "fake-echo", "provider": "fake", "upstream_model": "gpt-4o-mini"},
            {"name": "fake-429", "provider": "fake", "price_model": "gpt-4o-mini"},
            {"name": "fake-500", "provider": "fake", "price_model": "gpt-4o-mini"},
            {"name": "fake-401", "provider": "fake", "price_model": "gpt-4o-mini"},
            {"name": "fake-cut", "provider": "fake", "price_model": "gpt-4o-mini"},
            {"name": "fake-slow", "provider": "fake", "price_model": "gpt-4o-mini"},
            {"name": "fake-nousage", "provider": "fake", "price_model": "gpt-4o-mini"},
        ],
    }


@dataclass
class RunningGateway:
    settings: Settings
    server: uvicorn.Server
    thread: threading.Thread
    port: int
    key: str
    keys: KeyStore

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def stop(self) -> None:
        """Graceful shutdown: the lifespan flushes the event writer."""
        if self.thread.is_alive():
            self.server.should_exit = True
            self.thread.join(30)

    def events(self) -> pl.DataFrame:
        self.stop()
        files = sorted(self.settings.data.events_path.glob("date=*/hour=*/*.parquet"))
        if not files:
            return pl.DataFrame()
        return pl.concat([pl.read_parquet(f) for f in files], how="vertical")


def start_gateway(settings: Settings) -> RunningGateway:
    keys = KeyStore(settings.data.gateway_db_path, cache_seconds=settings.gateway.key_cache_seconds)
    _, plain = keys.create("test", customer_id="cust-test", team_id="team-a")
    port = free_port()
    app = create_app(settings, keys=keys)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        raise RuntimeError("gateway did not start")
    return RunningGateway(settings, server, thread, port, plain, keys)


@pytest.fixture
def make_gateway(tmp_path, fake_provider) -> Iterator:
    started: list[RunningGateway] = []

    def make(**gateway_overrides: object) -> RunningGateway:
        cfg = gateway_config(tmp_path / f"gw{len(started)}", fake_provider.base_url, **gateway_overrides)
        path = tmp_path / f"apex{len(started)}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        gw = start_gateway(load_settings(path))
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.stop()


@pytest.fixture
def gw(make_gateway) -> RunningGateway:
    return make_gateway()
