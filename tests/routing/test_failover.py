"""Retries, failover and fallback through the real gateway, with the openai SDK against local fake providers."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from tests.routing.conftest import deployments

MSG = [{"role": "user", "content": "hello there"}]

# ``a`` is all but certain to be picked first, so the tests know which deployment failed
A_THEN_B = {"name": "m", "deployments": [{"provider": "a", "weight": 1000}, {"provider": "b", "weight": 0.001}]}


def client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)


def test_429_with_long_retry_after_moves_to_the_other_deployment(routed_gateway, fakes):
    fakes["a"].mode, fakes["a"].retry_after = "fake-429", "30"
    gw = routed_gateway([A_THEN_B])
    t0 = time.monotonic()
    out = client(gw).chat.completions.create(model="m", messages=MSG)
    assert time.monotonic() - t0 < 1.0  # a Retry-After of 30 s is not waited for
    assert out.choices[0].message.content == "echo: hello there"
    assert (len(fakes["a"].requests), len(fakes["b"].requests)) == (1, 1)
    ev = gw.events().row(0, named=True)
    assert ev["http_status"] == 200 and ev["provider"] == "b"
    assert ev["routing_decision"] == "retry:m/a->m/b after 429 (2 attempts)"


def test_short_retry_after_is_waited_for_on_the_same_deployment(routed_gateway, fakes):
    fakes["a"].next_modes, fakes["a"].retry_after = ["fake-429"], "0.3"
    gw = routed_gateway([{"name": "m", "provider": "a"}])
    t0 = time.monotonic()
    client(gw).chat.completions.create(model="m", messages=MSG)
    assert time.monotonic() - t0 >= 0.3
    assert len(fakes["a"].requests) == 2


def test_429_that_cannot_be_waited_for_reaches_the_client_with_its_retry_after(routed_gateway, fakes):
    fakes["a"].mode, fakes["a"].retry_after = "fake-429", "30"
    gw = routed_gateway([{"name": "m", "provider": "a"}])
    r = httpx.post(
        gw.base_url + "/chat/completions",
        headers={"authorization": f"Bearer {gw.key}"},
        json={"model": "m", "messages": MSG},
    )
    assert r.status_code == 429 and r.headers["retry-after"] == "30"
    assert len(fakes["a"].requests) == 1


def test_5xx_fails_over_to_the_other_deployment(routed_gateway, fakes):
    fakes["a"].mode = "fake-500"
    gw = routed_gateway([A_THEN_B])
    for _ in range(3):
        client(gw).chat.completions.create(model="m", messages=MSG)
    assert len(fakes["b"].requests) == 3
    ev = gw.events().row(0, named=True)
    assert ev["routing_decision"] == "retry:m/a->m/b after 500 (2 attempts)"


def test_fallback_group_serves_when_every_deployment_fails(routed_gateway, fakes):
    fakes["a"].mode = fakes["b"].mode = "fake-500"
    gw = routed_gateway(
        [
            {
                "name": "m",
                "price_model": "gpt-4o",
                "deployments": [
                    {"provider": "a", "upstream_model": "gpt-4o"},
                    {"provider": "b", "upstream_model": "gpt-4o"},
                ],
                "fallbacks": ["backup"],
            },
            {"name": "backup", "provider": "c", "upstream_model": "gpt-4o-mini"},
        ]
    )
    out = client(gw).chat.completions.create(model="m", messages=MSG)
    assert out.choices[0].message.content == "echo: hello there"
    assert len(fakes["a"].requests) + len(fakes["b"].requests) == 3  # 1 + retries (2) in the requested group
    ev = gw.events().row(0, named=True)
    assert ev["requested_model"] == "m" and ev["served_model"] == "gpt-4o-mini" and ev["provider"] == "c"
    assert ev["routing_decision"] == "fallback:m->backup after 500 (4 attempts)"
    assert ev["cost_usd"] > 0 and ev["baseline_cost_usd"] > ev["cost_usd"]  # priced as served, baseline as asked


def test_when_everything_fails_the_last_error_is_returned(routed_gateway, fakes):
    fakes["a"].mode = fakes["b"].mode = "fake-500"
    gw = routed_gateway([A_THEN_B])
    with pytest.raises(openai.InternalServerError):
        client(gw).chat.completions.create(model="m", messages=MSG)
    ev = gw.events().row(0, named=True)
    assert ev["http_status"] == 502 and ev["error_type"] == "upstream_500"
    assert ev["routing_decision"] == "failed after 3 attempts: 500"


def test_4xx_is_not_retried(routed_gateway, fakes):
    fakes["a"].mode = "fake-401"
    gw = routed_gateway([A_THEN_B])
    with pytest.raises(openai.APIStatusError):
        client(gw).chat.completions.create(model="m", messages=MSG)
    assert (len(fakes["a"].requests), len(fakes["b"].requests)) == (1, 0)


def test_slow_first_byte_times_out_and_another_deployment_streams(routed_gateway, fakes):
    fakes["a"].mode = "fake-slow"
    gw = routed_gateway([A_THEN_B], first_byte_timeout_s=0.3)
    t0 = time.monotonic()
    stream = client(gw).chat.completions.create(model="m", messages=MSG, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "echo: hello there"
    assert time.monotonic() - t0 < 1.5
    ev = gw.events().row(0, named=True)
    assert ev["is_stream"] and ev["http_status"] == 200 and ev["provider"] == "b"
    assert ev["routing_decision"] == "retry:m/a->m/b after timeout (2 attempts)"


def test_slow_answer_times_out_and_another_deployment_answers(routed_gateway, fakes):
    fakes["a"].mode = "fake-slow"
    gw = routed_gateway([A_THEN_B], total_timeout_s=0.3)
    t0 = time.monotonic()
    assert client(gw).chat.completions.create(model="m", messages=MSG).choices[0].message.content
    assert time.monotonic() - t0 < 1.5
    # the attempt's limit reaches the HTTP client (the provider's own timeout_s is 10 s): a timeout, then a retry
    assert "did not answer within 0.3s" in deployments(gw)["m/a"]["last_error"]
    ev = gw.events().row(0, named=True)
    assert ev["provider"] == "b" and ev["routing_decision"] == "retry:m/a->m/b after timeout (2 attempts)"


def test_stream_falls_back_to_another_model_before_the_first_chunk(routed_gateway, fakes):
    fakes["a"].mode = "fake-500"
    gw = routed_gateway(
        [
            {"name": "m", "provider": "a", "fallbacks": ["backup"], "routing": {"retries": 0}},
            {"name": "backup", "provider": "c"},
        ]
    )
    stream = client(gw).chat.completions.create(model="m", messages=MSG, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "echo: hello there"
    ev = gw.events().row(0, named=True)
    assert ev["is_stream"] and ev["provider"] == "c"
    assert ev["routing_decision"] == "fallback:m->backup after 500 (2 attempts)"
