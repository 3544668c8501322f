"""Streams that do not end well are never recorded as free successes."""

from __future__ import annotations

import time

import httpx
import openai
import pytest


def test_upstream_cut_mid_stream_reaches_the_client_as_an_error(gw):
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(
            model="fake-cut",
            messages=[{"role": "user", "content": "one two three four five six"}],
            stream=True,
        ):
            received.append(chunk)
    assert "broke off" in str(info.value) or "without [DONE]" in str(info.value)
    assert received  # the first chunks did arrive before the cut
    ev = gw.events().row(0, named=True)
    assert ev["http_status"] == 502
    assert ev["error_type"] in {"upstream_stream_interrupted"}
    assert ev["usage_source"] == "estimated"
    assert ev["completion_tokens"] > 0 and ev["cost_usd"] > 0  # what was streamed is still money


def test_client_disconnect_records_what_was_streamed(gw):
    body = {
        "model": "fake-slow",
        "stream": True,
        "messages": [{"role": "user", "content": " ".join(f"w{i}" for i in range(200))}],
    }
    with httpx.stream(
        "POST",
        gw.base_url + "/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {gw.key}"},
        timeout=10,
    ) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        first = next(line for line in lines if line.startswith("data:"))
        assert "chat.completion.chunk" in first
    # the client is gone; the gateway must notice, cancel upstream and log the partial call
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and gw.server.server_state.tasks:
        time.sleep(0.05)
    ev = gw.events().row(0, named=True)
    assert ev["http_status"] == 499 and ev["error_type"] == "client_disconnected"
    assert ev["usage_source"] == "estimated"
    assert ev["prompt_tokens"] > 200
    assert ev["cost_usd"] > 0


def test_upstream_error_before_first_byte_keeps_its_status(gw):
    r = httpx.post(
        gw.base_url + "/chat/completions",
        headers={"authorization": f"Bearer {gw.key}"},
        json={"model": "fake-500", "stream": True, "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.status_code == 502
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == "upstream_500"
