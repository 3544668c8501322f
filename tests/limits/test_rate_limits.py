"""Per-key requests-per-minute and tokens-per-minute limits answer 429 with Retry-After."""

from __future__ import annotations

import openai
import pytest

MSG = [{"role": "user", "content": "Hello there."}]


def test_rpm_limit(start_gateway):
    gw = start_gateway()
    _, plain = gw.state.keys.create("rpm", rpm=3)
    client = openai.OpenAI(base_url=gw.base_url, api_key=plain, max_retries=0)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=10)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=10)
    assert info.value.body["code"] == "rate_limit_exceeded"
    assert 1 <= int(info.value.response.headers["retry-after"]) <= 60
    # another key is not affected
    _, other = gw.state.keys.create("other")
    openai.OpenAI(base_url=gw.base_url, api_key=other, max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=MSG, max_tokens=10
    )


def test_tpm_limit_counts_the_reservation_then_the_actual_tokens(start_gateway):
    gw = start_gateway()
    _, plain = gw.state.keys.create("tpm", tpm=100)
    client = openai.OpenAI(base_url=gw.base_url, api_key=plain, max_retries=0)
    # ~12 prompt + 60 reserved completion tokens fit; settled, at least 12 + 20 (the simulated minimum) remain
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=60)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=60)
    assert info.value.body["code"] == "rate_limit_exceeded"
    assert 1 <= int(info.value.response.headers["retry-after"]) <= 60
    # what is left in the minute still admits a small call
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)


def test_a_request_larger_than_the_tpm_limit_is_refused_without_retry_after(start_gateway):
    gw = start_gateway()
    _, plain = gw.state.keys.create("tpm", tpm=100)
    client = openai.OpenAI(base_url=gw.base_url, api_key=plain, max_retries=0)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=500)
    assert info.value.body["code"] == "tokens_exceed_limit"
    assert "retry-after" not in info.value.response.headers
