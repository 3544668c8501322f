"""Requests are checked against their wire format's schema before anything runs: a client's mistake is a 400 in
the client's own error shape that names the field, never a 500 or a call forwarded upstream. Clients that go away
or trickle their body are recorded, not crashed on."""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import time

import anthropic
import httpx
import orjson
import pytest

USER = {"role": "user", "content": "hi"}
CHAT = {"model": "fake-echo", "messages": [USER]}
MESSAGES = {"model": "fake-echo", "max_tokens": 16, "messages": [USER]}
TINY_PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAC0lEQVR4nGNgQAYAAA4AAamRc7EAAAAASUVORK5CYII="
)

CHAT_CASES = [
    # id, body, param, code  (each of these was forwarded upstream or crashed before the schema check)
    ("stream-options-true", {**CHAT, "stream": True, "stream_options": True}, "stream_options", "invalid_type"),
    ("stream-options-true-no-stream", {**CHAT, "stream_options": True}, "stream_options", "invalid_type"),
    ("tools-a-string", {**CHAT, "tools": "abc"}, "tools", "invalid_type"),
    ("n-a-string", {**CHAT, "n": "3"}, "n", "invalid_type"),
    ("n-zero", {**CHAT, "n": 0}, "n", "invalid_value"),
    ("temperature-hot", {**CHAT, "temperature": "hot"}, "temperature", "invalid_type"),
    ("temperature-above-2", {**CHAT, "temperature": 2.5}, "temperature", "invalid_value"),
    ("top-p-above-1", {**CHAT, "top_p": 1.5}, "top_p", "invalid_value"),
    ("stream-a-string", {**CHAT, "stream": "yes"}, "stream", "invalid_type"),
    ("max-tokens-float", {**CHAT, "max_tokens": 1.5}, "max_tokens", "invalid_type"),
    (
        "nested-text-a-number",
        {
            **CHAT,
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": 5}]},
            ],
        },
        "messages[2].content[0].text",
        "invalid_type",
    ),
    (
        "image-url-a-string",
        {**CHAT, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "http://x/a.png"}]}]},
        "messages[0].content[0].image_url",
        "invalid_type",
    ),
    (
        "image-detail-unknown",
        {
            **CHAT,
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u", "detail": "ultra"}}]}
            ],
        },
        "messages[0].content[0].image_url.detail",
        "invalid_value",
    ),
    (
        "unknown-part-type",
        {**CHAT, "messages": [{"role": "user", "content": [{"type": "video", "video": {}}]}]},
        "messages[0].content[0].type",
        "invalid_value",
    ),
    (
        "tool-without-function-name",
        {**CHAT, "tools": [{"type": "function", "function": {"parameters": {}}}]},
        "tools[0].function.name",
        "invalid_type",
    ),
    (
        "tool-parameters-a-list",
        {**CHAT, "tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]},
        "tools[0].function.parameters",
        "invalid_type",
    ),
    ("tool-choice-unknown", {**CHAT, "tool_choice": "sometimes"}, "tool_choice", "invalid_value"),
    ("response-format-a-string", {**CHAT, "response_format": "json"}, "response_format", "invalid_type"),
    (
        "response-format-unknown-type",
        {**CHAT, "response_format": {"type": "yaml"}},
        "response_format.type",
        "invalid_value",
    ),
    (
        "tool-call-arguments-an-object",
        {
            **CHAT,
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": {}}}],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "done"},
            ],
        },
        "messages[1].tool_calls[0].function.arguments",
        "invalid_type",
    ),
    (
        "tool-message-without-call-id",
        {**CHAT, "messages": [USER, {"role": "tool", "content": "x"}]},
        "messages[1].tool_call_id",
        "missing_required_parameter",
    ),
    (
        "user-without-content",
        {**CHAT, "messages": [{"role": "user"}]},
        "messages[0].content",
        "missing_required_parameter",
    ),
    ("stop-a-number", {**CHAT, "stop": 7}, "stop", "invalid_type"),
]


def _post(gw, path: str, body: object, **headers: str) -> httpx.Response:
    return httpx.post(
        gw.base_url + path,
        content=orjson.dumps(body),
        headers={"authorization": f"Bearer {gw.key}", "content-type": "application/json", **headers},
        timeout=10,
    )


@pytest.mark.parametrize(("body", "param", "code"), [c[1:] for c in CHAT_CASES], ids=[c[0] for c in CHAT_CASES])
def test_chat_schema_violations_are_400s_naming_the_field(gw, fake_provider, body, param, code):
    seen_before = len(fake_provider.requests)
    r = _post(gw, "/chat/completions", body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert (err["type"], err["param"], err["code"]) == ("invalid_request_error", param, code), err
    assert param in err["message"]
    assert len(fake_provider.requests) == seen_before  # refused at the edge, never forwarded
    ev = gw.events().row(0, named=True)  # an authenticated call: one event, priced at nothing
    assert ev["http_status"] == 400 and ev["error_type"] == code and ev["cost_usd"] is None


def test_valid_rich_chat_request_still_passes(gw):
    body = {
        "model": "fake-echo",
        "temperature": 0.3,
        "top_p": 1,
        "n": 1,
        "max_tokens": 32,
        "stop": ["\n\n"],
        "user": "u-1",
        "metadata": {"feature": "search"},
        "some_future_field": {"anything": True},  # unknown fields pass: the provider judges them
        "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}}},
        "tools": [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "look"}},
        "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "be brief"}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {
                        "type": "image_url",
                        "image_url": {
                            "url": TINY_PNG,
                            "detail": "low",
                        },
                    },
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
        ],
    }
    r = _post(gw, "/chat/completions", body)
    assert r.status_code == 200, r.text


ANTHROPIC_CASES = [
    # id, body, field path in the message
    (
        "text-block-text-a-number",
        {**MESSAGES, "messages": [{"role": "user", "content": [{"type": "text", "text": 42}]}]},
        "messages.0.content.0.text",
    ),
    (
        "image-source-a-string",
        {**MESSAGES, "messages": [{"role": "user", "content": [{"type": "image", "source": "http://x/a.png"}]}]},
        "messages.0.content.0.source",
    ),
    (
        "image-media-type-unknown",
        {
            **MESSAGES,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "x"}}
                    ],
                }
            ],
        },
        "messages.0.content.0.source.media_type",
    ),
    (
        "tool-use-input-a-string",
        {
            **MESSAGES,
            "messages": [
                USER,
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": "{}"}]},
            ],
        },
        "messages.1.content.0.input",
    ),
    (
        "tool-result-without-id",
        {**MESSAGES, "messages": [{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]},
        "messages.0.content.0.tool_use_id",
    ),
    ("role-system-in-messages", {**MESSAGES, "messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
    ("missing-max-tokens", {"model": "fake-echo", "messages": [USER]}, "max_tokens"),
    ("max-tokens-a-string", {**MESSAGES, "max_tokens": "16"}, "max_tokens"),
    ("temperature-above-1", {**MESSAGES, "temperature": 1.5}, "temperature"),
    ("system-a-number", {**MESSAGES, "system": 3}, "system"),
    ("system-block-text-a-list", {**MESSAGES, "system": [{"type": "text", "text": ["a"]}]}, "system.0.text"),
    ("stop-sequences-a-string", {**MESSAGES, "stop_sequences": "END"}, "stop_sequences"),
    ("tools-without-input-schema", {**MESSAGES, "tools": [{"name": "f"}]}, "tools.0.input_schema"),
    ("tool-choice-a-string", {**MESSAGES, "tool_choice": "auto"}, "tool_choice"),
    ("metadata-user-id-a-number", {**MESSAGES, "metadata": {"user_id": 7}}, "metadata.user_id"),
]


@pytest.mark.parametrize(("body", "field"), [c[1:] for c in ANTHROPIC_CASES], ids=[c[0] for c in ANTHROPIC_CASES])
def test_anthropic_schema_violations_are_400s_in_anthropic_shape(gw, body, field):
    r = _post(gw, "/messages", body, **{"anthropic-version": "2023-06-01"})
    assert r.status_code == 400, r.text
    data = r.json()
    assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error", data
    assert data["error"]["message"].startswith(field + ":"), data


def test_anthropic_sdk_sees_a_bad_request_naming_the_block(gw):
    client = anthropic.Anthropic(base_url=gw.url, api_key=gw.key, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(
            model="fake-echo",
            max_tokens=16,
            messages=[{"role": "user", "content": [{"type": "text", "text": 42}]}],  # type: ignore[list-item]
        )
    assert "messages.0.content.0.text" in str(info.value)


EMBEDDING_CASES = [
    ("input-mixed-token-array", {"model": "fake-echo", "input": [[1, "a"]]}, "input[0][1]"),
    ("input-list-of-numbers-and-strings", {"model": "fake-echo", "input": ["a", 1]}, "input[1]"),
    ("input-an-object", {"model": "fake-echo", "input": {"text": "a"}}, "input"),
    ("encoding-format-hex", {"model": "fake-echo", "input": "a", "encoding_format": "hex"}, "encoding_format"),
    ("dimensions-a-string", {"model": "fake-echo", "input": "a", "dimensions": "64"}, "dimensions"),
]


@pytest.mark.parametrize(("body", "param"), [c[1:] for c in EMBEDDING_CASES], ids=[c[0] for c in EMBEDDING_CASES])
def test_embeddings_schema_violations_are_400s(gw, body, param):
    r = _post(gw, "/embeddings", body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


# -- clients that go away or trickle ---------------------------------------------------------------------------------


def _raw_request(gw, body_prefix: bytes, declared: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {gw.key}\r\n"
        f"content-type: application/json\r\ncontent-length: {declared}\r\n\r\n"
    ).encode()
    sock.sendall(head + body_prefix)
    return sock


def _gateway_tracebacks(caplog) -> list[logging.LogRecord]:
    """The gateway's own error records (the fake provider, at the network edge, may log its side of a hang-up)."""
    return [
        r
        for r in caplog.records
        if r.name.startswith(("apex", "uvicorn")) and (r.exc_info or "internal error" in r.getMessage())
    ]


def _wait_idle(gw, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and gw.server.server_state.tasks:
        time.sleep(0.05)


def test_client_gone_mid_body_is_a_499_event_without_a_traceback(gw, caplog):
    caplog.set_level(logging.WARNING)
    sock = _raw_request(gw, b'{"model": "gpt-4o-mini", "mess', declared=500)
    time.sleep(0.2)
    sock.close()
    time.sleep(0.3)
    _wait_idle(gw)
    ev = gw.events().row(0, named=True)
    assert ev["http_status"] == 499 and ev["error_type"] == "client_disconnected"
    assert ev["cost_usd"] is None
    assert not _gateway_tracebacks(caplog)


def test_a_body_that_trickles_past_the_timeout_gets_408_and_the_connection_closes(make_gateway):
    gw = make_gateway(body_read_timeout_s=1)
    sock = _raw_request(gw, b'{"model": "gpt-4o-mini", ', declared=200)
    t0 = time.monotonic()
    received = b""
    with contextlib.suppress(OSError):  # the gateway may close the connection while a byte is on its way
        for _ in range(30):  # one byte every 0.1 s: each arrives, the whole never does in time
            if select.select([sock], [], [], 0.1)[0]:
                break
            sock.sendall(b" ")
    sock.settimeout(5)
    while chunk := sock.recv(65536):  # the answer, then the close
        received += chunk
    elapsed = time.monotonic() - t0
    sock.close()
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), received[:200]
    assert orjson.loads(body)["error"]["code"] == "body_read_timeout"
    assert 0.9 < elapsed < 3.5
    _wait_idle(gw)
    ev = gw.events().row(0, named=True)
    assert ev["http_status"] == 408 and ev["error_type"] == "body_read_timeout"


def test_a_prompt_body_is_not_slowed_by_the_guard(make_gateway):
    gw = make_gateway(body_read_timeout_s=1)
    for _ in range(3):
        r = _post(gw, "/chat/completions", {"model": "gpt-4o-mini", "messages": [USER]})
        assert r.status_code == 200
    time.sleep(1.3)  # the sweeper has nothing to end: a finished read is no longer watched
    r = _post(gw, "/chat/completions", {"model": "gpt-4o-mini", "messages": [USER]})
    assert r.status_code == 200


def test_an_unexpected_admin_failure_is_a_json_500_not_text(make_gateway, monkeypatch):
    """The last resort: a bug below the admin API (here: the key store failing) still answers in the OpenAI shape."""
    monkeypatch.setenv("APEX_MASTER_KEY", "edge-master-key-0123")
    gw = make_gateway()

    def broken() -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(gw.keys, "list", broken)
    r = httpx.get(gw.url + "/admin/keys", headers={"authorization": "Bearer edge-master-key-0123"}, timeout=10)
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == "internal_error" and r.headers["x-request-id"]
    assert "disk on fire" not in r.text


ADMIN_CASES = [
    # id, method, path ({key} = an existing key's id), body, param
    ("key-rpm-beyond-sqlite", "POST", "/admin/keys", {"name": "k", "rpm": 9223372036854775808}, "rpm"),
    ("key-tpm-beyond-sqlite", "PATCH", "/admin/keys/{key}", {"tpm": 2**64 - 1}, "tpm"),
    ("key-budget-huge", "POST", "/admin/keys", {"name": "k", "budget_usd": 1e300}, "budget_usd"),
    ("key-models-not-strings", "POST", "/admin/keys", {"name": "k", "models": ["gpt-4o-mini", 7]}, "models[1]"),
    ("key-name-empty", "PATCH", "/admin/keys/{key}", {"name": ""}, "name"),
    ("team-budget-a-string", "PUT", "/admin/teams/t1", {"budget_usd": "10"}, "budget_usd"),
    ("rotate-grace-forever", "POST", "/admin/keys/{key}/rotate", {"grace_seconds": 1e300}, "grace_seconds"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "param"), [c[1:] for c in ADMIN_CASES], ids=[c[0] for c in ADMIN_CASES]
)
def test_admin_bodies_out_of_bounds_are_400s_naming_the_field(make_gateway, monkeypatch, method, path, body, param):
    monkeypatch.setenv("APEX_MASTER_KEY", "edge-master-key-0123")
    gw = make_gateway()
    url = gw.url + path.format(key=gw.keys.list()[0].key_id)
    r = httpx.request(
        method, url, content=orjson.dumps(body), headers={"authorization": "Bearer edge-master-key-0123"}, timeout=10
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert (err["type"], err["param"]) == ("invalid_request_error", param), err


def test_client_gone_mid_stream_is_the_same_499_without_a_traceback(gw, caplog):
    caplog.set_level(logging.WARNING)
    body = {"model": "fake-slow", "stream": True, "messages": [{"role": "user", "content": "w " * 200}]}
    headers = {"authorization": f"Bearer {gw.key}"}
    with httpx.stream("POST", gw.base_url + "/chat/completions", json=body, headers=headers, timeout=10) as r:
        assert r.status_code == 200
        next(line for line in r.iter_lines() if line.startswith("data:"))
    _wait_idle(gw)
    ev = gw.events().row(0, named=True)
    assert ev["http_status"] == 499 and ev["error_type"] == "client_disconnected"
    assert not _gateway_tracebacks(caplog)
