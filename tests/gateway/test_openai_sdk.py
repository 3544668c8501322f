"""The official openai SDK against the real gateway: sync, async, streaming; and what lands in Parquet."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from contracts.pricing import litellm_price_file

MSG = [{"role": "user", "content": "What is the capital of France?"}]


def list_price(model: str) -> tuple[float, float]:
    entry = json.loads(litellm_price_file().read_text())[model]
    return entry["input_cost_per_token"], entry["output_cost_per_token"]


def expected_cost(model: str, prompt: int, completion: int) -> float:
    inp, out = list_price(model)
    return prompt * inp + completion * out


def test_sync_call_is_priced_to_the_micro_dollar(gw):
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
    resp = client.chat.completions.with_raw_response.create(model="fake-echo", messages=MSG, user="u-1")
    completion = resp.parse()
    assert completion.choices[0].message.content == "echo: What is the capital of France?"
    request_id = resp.headers["x-request-id"]

    ev = gw.events().row(0, named=True)
    assert ev["request_id"] == request_id
    assert ev["requested_model"] == "fake-echo" and ev["served_model"] == "gpt-4o-mini"
    assert ev["provider"] == "fake" and ev["provider_kind"] == "openai_compatible"
    assert ev["is_simulated"] is False and ev["is_stream"] is False
    assert ev["http_status"] == 200 and ev["error_type"] is None
    assert ev["prompt_tokens"] == completion.usage.prompt_tokens
    assert ev["completion_tokens"] == completion.usage.completion_tokens
    assert ev["usage_source"] == "provider"
    cost = expected_cost("gpt-4o-mini", completion.usage.prompt_tokens, completion.usage.completion_tokens)
    assert ev["cost_usd"] == pytest.approx(cost, abs=1e-6)
    assert ev["cost_usd"] > 0
    assert ev["baseline_cost_usd"] == pytest.approx(cost, abs=1e-6)
    assert ev["price_status"] == "priced"
    assert ev["price_table_version"].startswith("litellm-")
    assert ev["customer_id"] == "cust-test" and ev["team_id"] == "team-a" and ev["end_user"] == "u-1"
    assert ev["prompt_hash"] and len(ev["prompt_hash"]) == 64
    assert ev["prompt_text"] is None  # prompts are not stored unless configured
    assert ev["latency_ms"] >= ev["upstream_latency_ms"] >= 0
    assert ev["gateway_overhead_ms"] == pytest.approx(ev["latency_ms"] - ev["upstream_latency_ms"], abs=0.01)


def test_async_calls_each_get_one_event(gw):
    async def main() -> list[str]:
        client = openai.AsyncOpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
        outs = await asyncio.gather(
            *[
                client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i}"}])
                for i in range(20)
            ]
        )
        await client.close()
        return [o.id for o in outs]

    ids = asyncio.run(main())
    assert len(ids) == 20
    events = gw.events()
    assert events.height == 20
    assert events["event_id"].n_unique() == 20
    assert events["is_simulated"].all()
    assert (events["cost_usd"] > 0).all()


def test_stream_without_include_usage_strips_the_usage_chunk_but_records_usage(gw, fake_provider):
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
    chunks = list(client.chat.completions.create(model="fake-echo", messages=MSG, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: What is the capital of France?"
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)  # no usage-only chunk leaked to a client that did not ask
    assert fake_provider.requests[-1]["stream_options"] == {"include_usage": True}

    ev = gw.events().row(0, named=True)
    assert ev["is_stream"] is True
    assert ev["usage_source"] == "provider"
    assert ev["completion_tokens"] == len(text.split(" "))
    assert ev["cost_usd"] == pytest.approx(
        expected_cost("gpt-4o-mini", ev["prompt_tokens"], ev["completion_tokens"]), abs=1e-9
    )
    assert 0 < ev["ttft_ms"] <= ev["latency_ms"]


def test_stream_with_include_usage_passes_usage_through(gw):
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MSG, stream=True, stream_options={"include_usage": True}
        )
    )
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 0
    ev = gw.events().row(0, named=True)
    assert (ev["prompt_tokens"], ev["completion_tokens"]) == (usage.prompt_tokens, usage.completion_tokens)
    assert ev["cost_usd"] == pytest.approx(
        expected_cost("gpt-4o-mini", usage.prompt_tokens, usage.completion_tokens), abs=1e-9
    )


def test_async_streaming(gw):
    async def main() -> str:
        client = openai.AsyncOpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
        stream = await client.chat.completions.create(model="fake-echo", messages=MSG, stream=True)
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        await client.close()
        return "".join(parts)

    assert asyncio.run(main()) == "echo: What is the capital of France?"
    assert gw.events().height == 1


def test_models_endpoint_lists_configured_models(gw):
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key)
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4o-mini", "fake-echo"} <= ids


def test_unknown_price_is_flagged_never_zero(gw):
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
    client.chat.completions.create(model="sim-unpriced", messages=MSG)
    ev = gw.events().row(0, named=True)
    assert ev["completion_tokens"] > 0
    assert ev["cost_usd"] is None and ev["baseline_cost_usd"] is None
    assert ev["price_status"] == "unknown"


def test_missing_provider_usage_is_estimated_and_priced(gw):
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
    out = client.chat.completions.create(model="fake-nousage", messages=MSG)
    assert out.usage is None
    ev = gw.events().row(0, named=True)
    assert ev["usage_source"] == "estimated"
    assert ev["prompt_tokens"] > 0 and ev["completion_tokens"] > 0
    assert ev["cost_usd"] > 0


def test_prompts_are_stored_only_when_configured(make_gateway):
    gw = make_gateway(store_prompts=True)
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    ev = gw.events().row(0, named=True)
    assert json.loads(ev["prompt_text"]) == MSG


def test_metrics_and_health_expose_calls_cost_and_the_event_queue(gw):
    import httpx

    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
    client.chat.completions.create(model="fake-echo", messages=MSG)
    client.chat.completions.create(model="sim-unpriced", messages=MSG)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="fake-429", messages=MSG)
    text = httpx.get(gw.url + "/metrics").text
    assert 'apex_requests_total{gen_ai_request_model="fake-echo",http_status="200"} 1.0' in text
    assert 'apex_unpriced_calls_total{gen_ai_request_model="sim-unpriced"} 1.0' in text
    assert 'apex_upstream_errors_total{error_type="upstream_rate_limited",gen_ai_provider_name="fake"} 1.0' in text
    assert "gen_ai_server_request_duration_seconds_bucket" in text
    assert "apex_events_dropped 0.0" in text and "apex_event_queue_depth" in text
    health = httpx.get(gw.url + "/health").json()
    assert health["events"]["accepted"] == 3 and health["events"]["dropped"] == 0
