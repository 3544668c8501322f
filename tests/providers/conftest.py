"""A real gateway in front of fakes of every upstream kind: OpenAI-compatible and Azure, Anthropic, Gemini, Vertex."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import yaml

from contracts.pricing import litellm_price_file
from contracts.settings import load_settings
from sandbox.fake_anthropic import FakeAnthropic
from sandbox.fake_gemini import FakeGemini
from sandbox.fake_provider import FakeProvider
from tests.gateway.conftest import RunningGateway, start_gateway

SECRETS = {
    "AZURE_TEST_KEY": "azure-test-key",
    "ANTHROPIC_TEST_KEY": "sk-ant-test",
    "GEMINI_TEST_KEY": "gemini-test-key",
    "VERTEX_TEST_TOKEN": "vertex-test-token",
}
MSG = [{"role": "user", "content": "What is the capital of France?"}]
ECHO = "echo: What is the capital of France?"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def price(model: str) -> dict:
    return json.loads(litellm_price_file().read_text())[model]


def expected_cost(model: str, prompt: int, completion: int, cached: int = 0, written: int = 0) -> float:
    """List cost straight from litellm's JSON: plain input, cache reads, cache writes and output at their rates."""
    p = price(model)
    cache_read = p.get("cache_read_input_token_cost") or p["input_cost_per_token"]
    cache_write = p.get("cache_creation_input_token_cost") or p["input_cost_per_token"]
    plain = prompt - cached - written
    return (
        plain * p["input_cost_per_token"]
        + cached * cache_read
        + written * cache_write
        + completion * p["output_cost_per_token"]
    )


@pytest.fixture(scope="session")
def fakes() -> Iterator[dict[str, FakeProvider]]:
    started = {
        "openai": FakeProvider(slow_s=1.0),
        "anthropic": FakeAnthropic(slow_s=1.0),
        "gemini": FakeGemini(slow_s=1.0),
    }
    for fake in started.values():
        fake.start()
    yield started
    for fake in started.values():
        fake.stop()


def _route(name: str, provider: str, upstream: str | None = None, price_model: str | None = None) -> dict:
    route = {"name": name, "provider": provider}
    if upstream:
        route["upstream_model"] = upstream
    if price_model:
        route["price_model"] = price_model
    return route


def providers_config(data_dir, fakes: dict[str, FakeProvider]) -> dict:
    openai_root = fakes["openai"].base_url.removesuffix("/v1")
    return {
        "gateway": {"key_cache_seconds": 0},
        "data": {"dir": str(data_dir)},
        "events": {"flush_seconds": 0.2},
        "providers": [
            {"name": "sim", "kind": "simulated", "latency_scale": 0.0},
            {"name": "oai", "kind": "openai_compatible", "base_url": fakes["openai"].base_url, "timeout_s": 10},
            {
                "name": "azure",
                "kind": "azure",
                "base_url": openai_root,
                "api_version": "2024-10-21",
                "api_key_env": "AZURE_TEST_KEY",
                "timeout_s": 10,
            },
            {
                "name": "anth",
                "kind": "anthropic",
                "base_url": fakes["anthropic"].base_url,
                "api_key_env": "ANTHROPIC_TEST_KEY",
            },
            {"name": "gem", "kind": "gemini", "base_url": fakes["gemini"].base_url, "api_key_env": "GEMINI_TEST_KEY"},
            {
                "name": "vtx",
                "kind": "vertex",
                "base_url": fakes["gemini"].base_url,
                "project": "proj-1",
                "location": "us-central1",
                "api_key_env": "VERTEX_TEST_TOKEN",
            },
        ],
        "models": [
            _route("gpt-4o-mini", "oai"),
            _route("oai-429", "oai", "fake-429", "gpt-4o-mini"),
            _route("oai-cut", "oai", "fake-cut", "gpt-4o-mini"),
            _route("azure-mini", "azure", "prod-gpt4o-mini", "gpt-4o-mini"),
            _route("azure-429", "azure", "fake-429", "gpt-4o-mini"),
            _route("azure-cut", "azure", "fake-cut", "gpt-4o-mini"),
            _route("claude-haiku-4-5", "anth"),
            _route("claude-cached", "anth", "claude-haiku-4-5-cached", "claude-haiku-4-5"),
            _route("anth-429", "anth", "fake-429", "claude-haiku-4-5"),
            _route("anth-529", "anth", "fake-529", "claude-haiku-4-5"),
            _route("anth-cut", "anth", "fake-cut", "claude-haiku-4-5"),
            _route("anth-error", "anth", "fake-error", "claude-haiku-4-5"),
            _route("gemini-2.5-flash", "gem"),
            _route("gemini-cached", "gem", "gemini-2.5-flash-cached", "gemini-2.5-flash"),
            _route("gem-429", "gem", "fake-429", "gemini-2.5-flash"),
            _route("gem-cut", "gem", "fake-cut", "gemini-2.5-flash"),
            _route("vertex-flash", "vtx", "gemini-2.5-flash"),
            _route("vertex-429", "vtx", "fake-429", "gemini-2.5-flash"),
            _route("vertex-cut", "vtx", "fake-cut", "gemini-2.5-flash"),
            _route("text-embedding-3-small", "oai"),
            _route("azure-embed", "azure", "embed-deploy", "text-embedding-3-small"),
            _route("text-embedding-004", "gem"),
            _route("sim-embed", "sim", "text-embedding-3-small"),
            {
                "name": "embed-failover",
                "price_model": "text-embedding-3-small",
                "deployments": [
                    # weighted so the failing deployment is (almost surely) picked first: with equal weights four
                    # calls missed it one run in sixteen and the failover went untested
                    {
                        "provider": "oai",
                        "upstream_model": "fake-500",
                        "price_model": "text-embedding-3-small",
                        "weight": 1000,
                    },
                    {"provider": "azure", "upstream_model": "embed-deploy", "price_model": "text-embedding-3-small"},
                ],
                "routing": {"strategy": "weighted"},
            },
        ],
    }


@pytest.fixture
def gw(tmp_path, fakes, monkeypatch) -> Iterator[RunningGateway]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    for fake in fakes.values():
        fake.requests.clear()
        fake.headers.clear()
        fake.urls.clear()
    path = tmp_path / "apex.yaml"
    path.write_text(yaml.safe_dump(providers_config(tmp_path / "gw", fakes)))
    gateway = start_gateway(load_settings(path))
    yield gateway
    gateway.stop()
