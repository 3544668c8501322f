"""Two gateway processes on the redis backend spend one budget together without overspending it."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import yaml

from contracts.settings import load_settings
from gateway.keys import KeyStore
from tests.gateway.conftest import free_port
from tests.gateway_process import GatewayProcess, start_gateway_process
from tests.limits.conftest import limits_config

# A developer machine without redis skips these; CI (.ci/run installs redis-server) must run them, never skip.
pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None and not os.environ.get("CI"),
    reason="redis-server is not on PATH (apt-get install redis-server)",
)


@pytest.fixture
def redis_url() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        proc.kill()
        proc.wait(10)


@pytest.fixture
def two_gateways(tmp_path, redis_url, monkeypatch) -> Iterator[tuple[list[str], Path]]:
    # One gateway process per data directory (its lock): each gateway has its own (events, write-ahead log) and
    # both share the key store's database; the budget is shared through Redis.
    monkeypatch.delenv("APEX_DATA__DIR")  # the autouse isolation's one data dir would override both configs
    paths = []
    for i in range(2):
        cfg = limits_config(tmp_path / f"data{i}", backend="redis", redis_url=redis_url)
        cfg["data"]["gateway_db"] = str(tmp_path / "gateway.db")
        paths.append(tmp_path / f"apex{i}.yaml")
        paths[i].write_text(yaml.safe_dump(cfg))
    started: list[GatewayProcess] = []
    try:
        for i, path in enumerate(paths):
            started.append(start_gateway_process(path, tmp_path / f"gateway{i}.log", "--log-level", "warning"))
        yield [gw.url for gw in started], paths[0]
    finally:
        for gw in started:
            gw.stop()


async def _spend(urls: list[str], key: str, per_gateway: int) -> list[httpx.Response]:
    body = {"model": "gpt-4o-mini", "max_tokens": 100, "messages": [{"role": "user", "content": "a story"}]}
    headers = {"authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        calls = [
            client.post(f"{url}/v1/chat/completions", json=body, headers=headers)
            for url in urls
            for _ in range(per_gateway)
        ]
        return await asyncio.gather(*calls)


def test_two_gateways_share_one_budget(two_gateways, redis_url):
    urls, config = two_gateways
    budget = 0.002
    key, plain = KeyStore(load_settings(config).data.gateway_db_path).create("shared", budget_usd=budget)

    responses = asyncio.run(_spend(urls, plain, 100))

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, statuses
    limited = [r for r in responses if r.status_code == 429]
    assert limited, "200 calls cannot all fit the budget"
    assert {r.json()["error"]["code"] for r in limited} == {"insufficient_quota"}
    ok = [r for r in responses if r.status_code == 200]
    by_gateway = {u: sum(1 for r in ok if str(r.url).startswith(u)) for u in urls}
    assert all(by_gateway.values()), f"both gateways should have admitted calls: {by_gateway}"

    # settles are applied just after the answer; give the last ones a moment
    store = redis.Redis.from_url(redis_url)
    costs = sum(
        0.15e-6 * r.json()["usage"]["prompt_tokens"] + 0.6e-6 * r.json()["usage"]["completion_tokens"] for r in ok
    )
    deadline = time.monotonic() + 5
    while True:
        spent = float(store.hget(f"apex:budget:key:{key.key_id}:total", "spent") or 0)
        held = float(store.hget(f"apex:budget:key:{key.key_id}:total", "held") or 0)
        if abs(held) < 1e-12 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert abs(held) < 1e-12, "every hold was settled"
    assert spent == pytest.approx(costs, rel=1e-6)
    assert spent <= budget + 1e-12, f"overspent: {spent} > {budget}"
    assert spent > budget * 0.5, "the budget should be mostly used"
    store.close()


def test_rate_limits_and_release_on_the_redis_backend(start_gateway, redis_url):
    import openai

    gw = start_gateway(backend="redis", redis_url=redis_url)
    key, plain = gw.state.keys.create("rpm", rpm=2, budget_usd=1.0, budget_period="daily")
    client = openai.OpenAI(base_url=gw.base_url, api_key=plain, max_retries=0)
    msg = [{"role": "user", "content": "hi"}]
    client.chat.completions.create(model="gpt-4o-mini", messages=msg, max_tokens=5)
    client.chat.completions.create(model="gpt-4o-mini", messages=msg, max_tokens=5)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=msg, max_tokens=5)
    assert info.value.body["code"] == "rate_limit_exceeded"
    assert 1 <= int(info.value.response.headers["retry-after"]) <= 60
    store = redis.Redis.from_url(redis_url)
    (budget_key,) = store.keys(f"apex:budget:key:{key.key_id}:d:*")
    assert 0 < store.ttl(budget_key) <= 86400 + 3600  # a daily window expires after its day
    assert float(store.hget(budget_key, "held") or 0) == pytest.approx(0, abs=1e-12)
    store.close()
