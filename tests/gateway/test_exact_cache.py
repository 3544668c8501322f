"""The exact cache through the gateway: opt-in, keys that respect every parameter, tenants, stream replay."""

from __future__ import annotations

import openai
import pytest

from gateway.cache.exact import CachedAnswer, ExactCache

MSG = [{"role": "user", "content": "Cache me if you can"}]
ON = {"x-apex-cache": "on"}


def call(client, **kwargs):
    raw = client.chat.completions.with_raw_response.create(
        model="fake-echo", messages=kwargs.pop("messages", MSG), extra_headers=ON, **kwargs
    )
    return raw.headers.get("x-apex-cache"), raw.parse()


def test_second_identical_call_is_a_free_hit_with_its_baseline(gw, fake_provider):
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
    before = len(fake_provider.requests)
    status1, first = call(client)
    status2, second = call(client)
    assert (status1, status2) == ("miss", "hit")
    assert second.choices[0].message.content == first.choices[0].message.content
    assert len(fake_provider.requests) - before == 1  # the provider saw one call
    ev = gw.events().sort("ts_start")
    miss, hit = ev.row(0, named=True), ev.row(1, named=True)
    assert miss["cache_status"] == "miss" and miss["cost_usd"] > 0
    assert hit["cache_status"] == "hit_exact"
    assert hit["cost_usd"] == 0.0 and hit["price_status"] == "priced"
    assert hit["baseline_cost_usd"] == pytest.approx(miss["cost_usd"], abs=1e-12)
    assert hit["savings_cache_usd"] == pytest.approx(miss["cost_usd"], abs=1e-12)
    assert hit["provider"] == "apex-cache" and hit["requested_model"] == "fake-echo"


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.9},
        {"top_p": 0.5},
        {"seed": 42},
        {"max_tokens": 17},
        {"stop": ["\n"]},
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
        {"messages": [{"role": "system", "content": "be brief"}, *MSG]},
    ],
    ids=["temperature", "top_p", "seed", "max_tokens", "stop", "json_mode", "tools", "system_prompt"],
)
def test_any_parameter_that_changes_the_answer_changes_the_key(gw, change):
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
    assert call(client)[0] == "miss"
    assert call(client, **change)[0] == "miss"
    assert call(client, **change)[0] == "hit"


def test_end_user_and_metadata_do_not_split_the_cache(gw):
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
    assert call(client, user="alice")[0] == "miss"
    assert call(client, user="bob", metadata={"feature": "x"})[0] == "hit"


def test_another_tenant_never_hits(gw):
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
    call(client)
    _, other_key = gw.keys.create("other", customer_id="another-customer")
    other = openai.OpenAI(base_url=gw.base_url, api_key=other_key, max_retries=0)
    assert call(other)[0] == "miss"
    assert call(client)[0] == "hit"


def test_without_opt_in_nothing_is_cached(gw, fake_provider):
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
    before = len(fake_provider.requests)
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model="fake-echo", messages=MSG)
        assert "x-apex-cache" not in raw.headers
    assert len(fake_provider.requests) - before == 2
    assert gw.events()["cache_status"].null_count() == 2


def test_hit_is_replayed_as_a_stream_and_a_stream_fills_the_cache(gw):
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
    _, first = call(client)
    stream = client.chat.completions.create(model="fake-echo", messages=MSG, stream=True, extra_headers=ON)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == first.choices[0].message.content

    other = [{"role": "user", "content": "streamed first"}]
    s1 = client.chat.completions.create(model="fake-echo", messages=other, stream=True, extra_headers=ON)
    streamed = "".join(c.choices[0].delta.content or "" for c in s1 if c.choices)
    status, again = call(client, messages=other)
    assert status == "hit" and again.choices[0].message.content == streamed
    ev = gw.events()
    hits = ev.filter(ev["cache_status"] == "hit_exact")
    assert hits.height == 2 and (hits["cost_usd"] == 0).all() and (hits["savings_cache_usd"] > 0).all()


def test_errors_are_not_cached(gw):
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="fake-500", messages=MSG, extra_headers=ON)


def answer(n: int, size: int = 10) -> CachedAnswer:
    return CachedAnswer(b"x" * size, None, "m", "stop", stored_at=1000.0 + n)


def test_ttl_expires_entries():
    cache = ExactCache(ttl_s=60)
    cache.put("k", answer(0))
    assert cache.get("k", now=1059) is not None
    assert cache.get("k", now=1061) is None and len(cache) == 0


def test_size_bound_evicts_least_recently_used():
    cache = ExactCache(max_entries=2)
    cache.put("a", answer(0))
    cache.put("b", answer(1))
    assert cache.get("a", now=1002) is not None  # a is now the most recent
    cache.put("c", answer(2))
    assert cache.get("b", now=1003) is None and cache.get("a", now=1003) is not None
    byte_bound = ExactCache(max_bytes=2048)
    for i in range(5):
        byte_bound.put(str(i), answer(i, size=1000))
    assert byte_bound.stats()["bytes"] <= 2048 and len(byte_bound) == 2
