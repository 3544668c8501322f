"""Every error path: status code, OpenAI error shape, and the event it leaves (or not)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import orjson
import pytest

OK_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

CASES = [
    # id, headers (None = valid key), body, status, type, code, param
    ("missing-key", {}, OK_BODY, 401, "authentication_error", "missing_api_key", None),
    (
        "wrong-key",
        {"authorization": "Bearer sk-apex-nope"},
        OK_BODY,
        401,
        "authentication_error",
        "invalid_api_key",
        None,
    ),
    ("malformed-json", None, b"{not json", 400, "invalid_request_error", "invalid_json", None),
    ("json-array", None, b"[1, 2]", 400, "invalid_request_error", "invalid_json", None),
    ("empty-body", None, b"", 400, "invalid_request_error", "invalid_json", None),
    (
        "missing-model",
        None,
        {"messages": [{"role": "user", "content": "x"}]},
        400,
        "invalid_request_error",
        "missing_required_parameter",
        "model",
    ),
    (
        "missing-messages",
        None,
        {"model": "gpt-4o-mini"},
        400,
        "invalid_request_error",
        "missing_required_parameter",
        "messages",
    ),
    (
        "empty-messages",
        None,
        {"model": "gpt-4o-mini", "messages": []},
        400,
        "invalid_request_error",
        "invalid_type",
        "messages",
    ),
    (
        "bad-role",
        None,
        {"model": "gpt-4o-mini", "messages": [{"role": "robot", "content": "x"}]},
        400,
        "invalid_request_error",
        "invalid_value",
        "messages[0].role",
    ),
    (
        "bad-max-tokens",
        None,
        {**OK_BODY, "max_tokens": -5},
        400,
        "invalid_request_error",
        "invalid_value",
        "max_tokens",
    ),
    (
        "unknown-model",
        None,
        {**OK_BODY, "model": "gpt-9"},
        404,
        "invalid_request_error",
        "model_not_found",
        "model",
    ),
    (
        "upstream-429",
        None,
        {**OK_BODY, "model": "fake-429"},
        429,
        "rate_limit_error",
        "upstream_rate_limited",
        None,
    ),
    ("upstream-500", None, {**OK_BODY, "model": "fake-500"}, 502, "upstream_error", "upstream_500", None),
    (
        "upstream-401",
        None,
        {**OK_BODY, "model": "fake-401"},
        502,
        "upstream_error",
        "upstream_auth_failed",
        None,
    ),
]


@pytest.mark.parametrize(
    ("headers", "body", "status", "etype", "code", "param"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_error_status_and_body(gw, headers, body, status, etype, code, param):
    hdrs = {"authorization": f"Bearer {gw.key}"} if headers is None else headers
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    r = httpx.post(gw.base_url + "/chat/completions", headers=hdrs, timeout=10, **kwargs)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert (err["type"], err["code"], err["param"]) == (etype, code, param)
    assert err["message"]
    assert r.headers["x-request-id"]
    events = gw.events()
    if status == 401:
        assert events.height == 0  # unauthenticated calls are counted, not logged
    else:
        ev = events.row(0, named=True)
        assert ev["http_status"] == status and ev["error_type"] == code
        assert ev["cost_usd"] is None and ev["price_status"] == "no_usage"
        assert ev["request_id"] == r.headers["x-request-id"]


def test_upstream_429_passes_retry_after(gw):
    r = httpx.post(
        gw.base_url + "/chat/completions",
        headers={"authorization": f"Bearer {gw.key}"},
        json={**OK_BODY, "model": "fake-429"},
    )
    assert r.status_code == 429 and r.headers["retry-after"] == "2"


def test_body_size_limit(make_gateway):
    gw = make_gateway(max_body_bytes=2048)
    big = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 5000}]}
    r = httpx.post(gw.base_url + "/chat/completions", headers={"authorization": f"Bearer {gw.key}"}, json=big)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "body_too_large"


def test_chunked_body_is_read_whole_and_held_to_the_limit(make_gateway):
    """No content-length (chunked upload): the body arrives in pieces, the limit is checked as they come."""
    gw = make_gateway(max_body_bytes=2048)
    headers = {"authorization": f"Bearer {gw.key}", "content-type": "application/json"}
    raw = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello in pieces"}]})

    def pieces(data: bytes, size: int = 7) -> Iterator[bytes]:
        for i in range(0, len(data), size):
            yield data[i : i + size]

    r = httpx.post(gw.base_url + "/chat/completions", headers=headers, content=pieces(raw))
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"]
    big = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 5000}]})
    r = httpx.post(gw.base_url + "/chat/completions", headers=headers, content=pieces(big, 512))
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_unknown_endpoint_and_method_are_json(gw):
    r = httpx.get(gw.url + "/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url"
    r = httpx.get(gw.base_url + "/chat/completions")
    assert r.status_code == 405 and r.json()["error"]["type"] == "invalid_request_error"


def test_sdk_sees_typed_errors(gw):
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gw.base_url, api_key="sk-wrong", max_retries=0).models.list()
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="fake-429", messages=[{"role": "user", "content": "x"}])
