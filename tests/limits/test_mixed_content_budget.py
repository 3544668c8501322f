"""Finding 1 through the real gateway: 200 concurrent calls of mixed content (long tool descriptions, earlier tool
calls, images) on a $0.001 total budget, against fakes that bill tools and images as OpenAI and Anthropic do."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
import uvicorn
import yaml
from PIL import Image

from contracts.settings import load_settings
from gateway.app import create_app
from sandbox.fake_anthropic import FakeAnthropic
from sandbox.fake_provider import FakeProvider
from tests.gateway.conftest import free_port
from tests.limits.conftest import Gateway, wait_healthy

BUDGET = 0.001


def _png(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("L", (width, height), 200).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Look up an order. " + "Orders are kept for seven years and searchable by id. " * 40,
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
    },
}
CALLED = [
    {"role": "user", "content": "Where is order 42?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"order_id": "42"}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "shipped"},
    {"role": "user", "content": "Thanks, and when?"},
]


def _image(url: str, detail: str) -> list[dict[str, Any]]:
    parts = [
        {"type": "text", "text": "What is in it?"},
        {"type": "image_url", "image_url": {"url": url, "detail": detail}},
    ]
    return [{"role": "user", "content": parts}]


def openai_requests() -> list[dict[str, Any]]:
    """Four kinds, 50 of each: a tool-heavy call, and images that cost ~$0.0004, ~$0.004 and an unknown amount."""
    kinds = [
        {"messages": CALLED, "tools": [TOOL]},
        {"messages": _image("data:image/png;base64," + _png(640, 480), "low")},
        {"messages": _image("data:image/png;base64," + _png(2048, 1536), "high")},
        {"messages": _image("https://images.example/photo-4096x3072.png", "auto")},
    ]
    return [{**kinds[i % 4], "max_tokens": 20} for i in range(200)]


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeProvider, FakeAnthropic]]:
    fakes = FakeProvider(record=False), FakeAnthropic()
    fakes[1].record = False
    for fake in fakes:
        fake.start()
    yield fakes
    for fake in fakes:
        fake.stop()


@pytest.fixture
def gateway(tmp_path: Path, fakes, monkeypatch) -> Iterator[Gateway]:
    monkeypatch.setenv("ANTHROPIC_TEST_KEY", fakes[1].api_key)
    config = {
        "gateway": {"key_cache_seconds": 0},
        "data": {"dir": str(tmp_path / "data")},
        "events": {"flush_seconds": 0.2},
        "providers": [
            {"name": "oai", "kind": "openai_compatible", "base_url": fakes[0].base_url, "timeout_s": 10},
            {"name": "anth", "kind": "anthropic", "base_url": fakes[1].base_url, "api_key_env": "ANTHROPIC_TEST_KEY"},
        ],
        "models": [{"name": "gpt-4o-mini", "provider": "oai"}, {"name": "claude-haiku-4-5", "provider": "anth"}],
    }
    path = tmp_path / "apex.yaml"
    path.write_text(yaml.safe_dump(config))
    app = create_app(load_settings(path))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    import threading

    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    gw = Gateway(server, thread, port, app.state.apex)
    wait_healthy(gw.url)
    yield gw
    gw.stop()


def _first_use(gw: Gateway, key: str) -> None:
    """One authenticated call that buys nothing, so the burst is not a new key's first contact (which the
    failed-authentication throttle meters until the key is known good)."""
    assert httpx.get(gw.base_url + "/models", headers={"authorization": f"Bearer {key}"}).status_code == 200


async def _openai_burst(gw: Gateway, key: str) -> list[Any]:
    client = openai.AsyncOpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=30)
    try:
        calls = [client.chat.completions.create(model="gpt-4o-mini", **body) for body in openai_requests()]
        return await asyncio.gather(*calls, return_exceptions=True)
    finally:
        await client.close()


def _split(results: list[Any], error: type[Exception]) -> tuple[list[Any], list[Any]]:
    ok = [r for r in results if not isinstance(r, BaseException)]
    limited = [r for r in results if isinstance(r, error) and r.status_code == 429]
    assert len(ok) + len(limited) == len(results), [r for r in results if isinstance(r, BaseException)][:3]
    return ok, limited


def test_200_concurrent_mixed_content_calls_never_overspend_a_total_budget(gateway):
    key, plain = gateway.state.keys.create("mixed", budget_usd=BUDGET)
    _first_use(gateway, plain)

    ok, limited = _split(asyncio.run(_openai_burst(gateway, plain)), openai.APIStatusError)

    spent = gateway.state.limiter.store.spent("key", key.key_id, "total")
    assert spent <= BUDGET + 1e-12, f"overspent: ${spent:.6f} on a ${BUDGET} budget"
    assert ok and len(limited) >= 150, (len(ok), len(limited))
    # what was settled is what the fake billed the admitted calls (tools and images included)
    billed = sum(0.15e-6 * r.usage.prompt_tokens + 0.6e-6 * r.usage.completion_tokens for r in ok)
    assert spent == pytest.approx(billed, rel=1e-6)
    # every admitted call was billed for its costly part, whichever kinds won the race to the budget (text alone
    # is ~15 tokens; the cheapest kind, a low-detail image, is 85 more; the tool-heavy call ~500)
    assert min(r.usage.prompt_tokens for r in ok) > 80
    # a total budget never resets: OpenAI's insufficient_quota, no Retry-After, and the SDKs told not to retry
    assert {e.body["code"] for e in limited} == {"insufficient_quota"}
    assert {e.body["type"] for e in limited} == {"insufficient_quota"}
    assert all("retry-after" not in e.response.headers for e in limited)
    assert {e.response.headers["x-should-retry"] for e in limited} == {"false"}


def test_anthropic_images_and_tools_never_overspend_a_total_budget(gateway):
    budget = 0.01  # one call of these costs ~$0.001 on claude-haiku-4-5
    key, plain = gateway.state.keys.create("mixed-anthropic", budget_usd=budget)
    _first_use(gateway, plain)
    tool = {"name": "lookup_order", "description": TOOL["function"]["description"], "input_schema": {"type": "object"}}
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": _png(1200, 900)}}
    remote = {"type": "image", "source": {"type": "url", "url": "https://images.example/shot-1568x1568.png"}}
    bodies: list[dict[str, Any]] = [
        {"messages": [{"role": "user", "content": "Where is order 42?"}], "tools": [tool]},
        {"messages": [{"role": "user", "content": [image, {"type": "text", "text": "What is it?"}]}]},
        {"messages": [{"role": "user", "content": [remote, {"type": "text", "text": "And this?"}]}]},
    ]

    async def burst() -> list[Any]:
        client = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=plain, max_retries=0, timeout=30)
        try:
            calls = [
                client.messages.create(model="claude-haiku-4-5", max_tokens=20, **bodies[i % 3]) for i in range(120)
            ]
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            await client.close()

    ok, limited = _split(asyncio.run(burst()), anthropic.APIStatusError)

    spent = gateway.state.limiter.store.spent("key", key.key_id, "total")
    assert spent <= budget + 1e-12, f"overspent: ${spent:.6f} on a ${budget} budget"
    assert ok and limited, (len(ok), len(limited))
    assert max(m.usage.input_tokens for m in ok) > 700  # a tool or an image was billed
    assert all("retry-after" not in e.response.headers for e in limited)
    assert {e.response.headers["x-should-retry"] for e in limited} == {"false"}
