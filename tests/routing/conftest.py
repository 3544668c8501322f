"""A real gateway in front of three local fake providers, each one a deployment (``a``, ``b``, ``c``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from contracts.settings import load_settings
from sandbox.fake_provider import FakeProvider
from tests.gateway.conftest import RunningGateway, start_gateway

MASTER = "sk-master-test"
NAMES = ("a", "b", "c")


@pytest.fixture(scope="session")
def fakes() -> Iterator[dict[str, FakeProvider]]:
    started = {name: FakeProvider().start() for name in NAMES}
    yield started
    for fake in started.values():
        fake.stop()


@pytest.fixture(autouse=True)
def _reset_fakes(fakes: dict[str, FakeProvider]) -> None:
    for fake in fakes.values():
        fake.mode, fake.next_modes, fake.retry_after, fake.slow_s = None, [], "2", 2.0
        fake.requests.clear()
        fake.headers.clear()


@pytest.fixture
def routed_gateway(tmp_path, fakes, monkeypatch) -> Iterator:
    monkeypatch.setenv("APEX_MASTER_KEY", MASTER)
    started: list[RunningGateway] = []

    def make(models: list[dict[str, Any]], **routing: Any) -> RunningGateway:
        n = len(started)
        cfg = {
            "gateway": {"key_cache_seconds": 0},
            "data": {"dir": str(tmp_path / f"gw{n}")},
            "events": {"flush_seconds": 0.2},
            "providers": [
                {"name": name, "kind": "openai_compatible", "base_url": fake.base_url, "timeout_s": 10}
                for name, fake in fakes.items()
            ],
            "models": models,
            "routing": {"backoff_base_s": 0.01, "backoff_max_s": 0.05, **routing},
        }
        path = tmp_path / f"apex{n}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        monkeypatch.setenv("APEX_DATA__DIR", str(tmp_path / f"gw{n}"))
        gw = start_gateway(load_settings(path))
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.stop()


def deployments(gw: RunningGateway) -> dict[str, dict[str, Any]]:
    r = httpx.get(gw.url + "/admin/deployments", headers={"authorization": f"Bearer {MASTER}"})
    assert r.status_code == 200, r.text
    return {d["id"]: d for d in r.json()["deployments"]}


def circuit_gauge(gw: RunningGateway, deployment: str) -> float:
    needle = f'apex_circuit_state{{deployment="{deployment}"}} '
    for line in httpx.get(gw.url + "/metrics").text.splitlines():
        if line.startswith(needle):
            return float(line[len(needle) :])
    raise AssertionError(f"no {needle!r} in /metrics")
