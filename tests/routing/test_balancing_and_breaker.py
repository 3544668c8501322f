"""Load balancing, circuit breakers and health checks through the real gateway, observed from the outside."""

from __future__ import annotations

import time

import httpx

from tests.routing.conftest import MASTER, circuit_gauge, deployments

MSG = [{"role": "user", "content": "hi"}]


def call(gw, model: str = "m") -> httpx.Response:
    return httpx.post(
        gw.base_url + "/chat/completions",
        headers={"authorization": f"Bearer {gw.key}"},
        json={"model": model, "messages": MSG},
        timeout=10,
    )


def test_weighted_split_follows_the_weights(routed_gateway, fakes):
    gw = routed_gateway(
        [{"name": "m", "deployments": [{"provider": "a", "weight": 3}, {"provider": "b", "weight": 1}]}]
    )
    n = 200
    with httpx.Client(headers={"authorization": f"Bearer {gw.key}"}) as http:
        for _ in range(n):
            assert http.post(gw.base_url + "/chat/completions", json={"model": "m", "messages": MSG}).is_success
    share_a = len(fakes["a"].requests) / n
    assert 0.62 <= share_a <= 0.88  # 0.75 expected; ±~5 standard deviations
    assert len(fakes["a"].requests) + len(fakes["b"].requests) == n


def test_latency_strategy_prefers_the_faster_deployment(routed_gateway, fakes):
    fakes["a"].mode, fakes["a"].slow_s = "fake-slow", 0.05
    gw = routed_gateway(
        [{"name": "m", "deployments": [{"provider": "a"}, {"provider": "b"}]}],
        strategy="latency",
        latency_explore=0.1,
    )
    n = 40
    for _ in range(n):
        assert call(gw).status_code == 200
    assert len(fakes["b"].requests) >= 0.7 * n
    state = deployments(gw)
    assert state["m/a"]["ewma_latency_ms"] > state["m/b"]["ewma_latency_ms"]


def test_breaker_opens_probes_half_open_and_closes(routed_gateway, fakes):
    fakes["a"].mode = "fake-500"
    gw = routed_gateway(
        [{"name": "m", "deployments": [{"provider": "a", "weight": 1000}, {"provider": "b", "weight": 0.001}]}],
        breaker={"failures": 2, "window_s": 30, "cooldown_s": 0.5},
    )
    assert circuit_gauge(gw, "m/a") == 0.0
    for _ in range(2):
        assert call(gw).status_code == 200  # a fails, b serves
    state = deployments(gw)["m/a"]
    assert state["state"] == "open" and state["last_error"].startswith("upstream_500")
    assert circuit_gauge(gw, "m/a") == 2.0

    assert call(gw).status_code == 200
    assert len(fakes["a"].requests) == 2  # open: skipped

    fakes["a"].mode = None
    time.sleep(0.6)
    assert deployments(gw)["m/a"]["state"] == "half_open"
    assert call(gw).status_code == 200  # the probe
    assert len(fakes["a"].requests) == 3
    assert deployments(gw)["m/a"]["state"] == "closed"
    assert circuit_gauge(gw, "m/a") == 0.0


def test_failed_probe_reopens_the_circuit(routed_gateway, fakes):
    fakes["a"].mode = "fake-500"
    gw = routed_gateway(
        [{"name": "m", "deployments": [{"provider": "a", "weight": 1000}, {"provider": "b", "weight": 0.001}]}],
        breaker={"failures": 1, "window_s": 30, "cooldown_s": 0.3},
    )
    assert call(gw).status_code == 200
    time.sleep(0.35)
    assert call(gw).status_code == 200  # probe to a fails, b serves
    assert len(fakes["a"].requests) == 2
    assert deployments(gw)["m/a"]["state"] == "open"


def test_health_checker_closes_a_recovered_deployment(routed_gateway, fakes):
    fakes["a"].mode = "fake-500"
    gw = routed_gateway(
        [{"name": "m", "deployments": [{"provider": "a", "weight": 1000}, {"provider": "b", "weight": 0.001}]}],
        breaker={"failures": 1, "window_s": 30, "cooldown_s": 60},
        health_check={"interval_s": 0.1},
    )
    assert call(gw).status_code == 200
    assert deployments(gw)["m/a"]["state"] == "open"
    fakes["a"].mode = None
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and deployments(gw)["m/a"]["state"] != "closed":
        time.sleep(0.05)
    assert deployments(gw)["m/a"]["state"] == "closed"  # no client call needed
    assert fakes["a"].requests[-1]["max_tokens"] == 1


def test_every_circuit_open_fails_fast(routed_gateway, fakes):
    fakes["a"].mode = "fake-500"
    gw = routed_gateway([{"name": "m", "provider": "a"}], breaker={"failures": 1, "window_s": 30, "cooldown_s": 60})
    assert call(gw).status_code == 502
    r = call(gw)
    assert r.status_code == 502 and r.json()["error"]["code"] == "no_healthy_deployment"
    assert len(fakes["a"].requests) == 1


def test_admin_deployments_needs_the_master_key(routed_gateway):
    gw = routed_gateway([{"name": "m", "provider": "a"}])
    assert httpx.get(gw.url + "/admin/deployments").status_code == 401
    r = httpx.get(gw.url + "/admin/deployments", headers={"authorization": f"Bearer {gw.key}"})
    assert r.status_code == 401
    r = httpx.get(gw.url + "/admin/deployments", headers={"authorization": f"Bearer {MASTER}"})
    (dep,) = r.json()["deployments"]
    assert dep["id"] == "m/a" and dep["state"] == "closed" and dep["weight"] == 1.0
    assert set(dep) >= {"ewma_latency_ms", "in_flight", "recent_failures", "last_error"}
