"""Finding 6: every 429 says whether and when to retry, in both wire formats.

A limit that resets (RPM/TPM windows, daily/weekly/monthly budgets) sends ``Retry-After`` = seconds to the end of
its window. One that never will (a spent ``total`` budget: OpenAI's ``insufficient_quota``; a request larger than
the TPM limit: ``tokens_exceed_limit``) sends no Retry-After and ``x-should-retry: false``, which the SDKs obey.
"""

from __future__ import annotations

import time

import httpx
import pytest

from gateway.limits.periods import current_window

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there."}], "max_tokens": 50}


def _post(gw, key: str, wire: str, body: dict | None = None) -> httpx.Response:
    if wire == "openai":
        return httpx.post(
            gw.base_url + "/chat/completions", json=body or CHAT, headers={"authorization": f"Bearer {key}"}
        )
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    return httpx.post(gw.url + "/v1/messages", json=body or CHAT, headers=headers)


def _error(resp: httpx.Response, wire: str) -> dict:
    body = resp.json()
    if wire == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
        return body["error"]
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def _exhaust(gw, key: str, wire: str) -> httpx.Response:
    for _ in range(200):
        resp = _post(gw, key, wire)
        if resp.status_code != 200:
            return resp
    raise AssertionError("the budget never ran out")


WIRES = pytest.mark.parametrize("wire", ["openai", "anthropic"])


@WIRES
def test_a_spent_total_budget_is_insufficient_quota_without_retry_after(start_gateway, wire):
    gw = start_gateway()
    _, plain = gw.state.keys.create("total", budget_usd=0.0002)
    resp = _exhaust(gw, plain, wire)
    assert resp.status_code == 429
    err = _error(resp, wire)
    if wire == "openai":
        assert (err["type"], err["code"]) == ("insufficient_quota", "insufficient_quota")
    assert "does not reset" in err["message"]
    assert "retry-after" not in resp.headers
    assert resp.headers["x-should-retry"] == "false"


@WIRES
@pytest.mark.parametrize("period", ["daily", "weekly", "monthly"])
def test_a_spent_periodic_budget_says_when_it_resets(start_gateway, wire, period):
    gw = start_gateway()
    _, plain = gw.state.keys.create("periodic", budget_usd=0.0002, budget_period=period)
    resp = _exhaust(gw, plain, wire)
    assert resp.status_code == 429
    err = _error(resp, wire)
    if wire == "openai":
        assert (err["type"], err["code"]) == ("rate_limit_error", "budget_exceeded")
    _, resets = current_window(period, time.time())
    assert resets is not None
    assert 1 <= int(resp.headers["retry-after"]) <= resets - time.time() + 2
    assert "x-should-retry" not in resp.headers


@WIRES
def test_an_rpm_window_says_when_it_resets(start_gateway, wire):
    gw = start_gateway()
    _, plain = gw.state.keys.create("rpm", rpm=1)
    assert _post(gw, plain, wire).status_code == 200
    resp = _post(gw, plain, wire)
    assert resp.status_code == 429
    if wire == "openai":
        assert _error(resp, wire)["code"] == "rate_limit_exceeded"
    assert 1 <= int(resp.headers["retry-after"]) <= 60


@WIRES
def test_a_request_larger_than_the_tpm_limit_says_it_can_never_pass(start_gateway, wire):
    gw = start_gateway()
    _, plain = gw.state.keys.create("tpm", tpm=100)
    resp = _post(gw, plain, wire, {**CHAT, "max_tokens": 500})
    assert resp.status_code == 429
    err = _error(resp, wire)
    if wire == "openai":
        assert (err["type"], err["code"]) == ("rate_limit_error", "tokens_exceed_limit")
    assert "can never run" in err["message"]
    assert "retry-after" not in resp.headers
    assert resp.headers["x-should-retry"] == "false"
