"""Fuzz the gateway from its own OpenAPI description: valid and invalid requests, never a 5xx or a stack trace."""

from __future__ import annotations

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from gateway.openapi import openapi_spec

pytestmark = pytest.mark.slow

schema = schemathesis.openapi.from_dict(openapi_spec())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@pytest.fixture(scope="module")
def fuzz_gateway(tmp_path_factory, fake_provider):
    import yaml

    from contracts.settings import load_settings
    from tests.gateway.conftest import gateway_config, start_gateway

    tmp = tmp_path_factory.mktemp("fuzz")
    path = tmp / "apex.yaml"
    path.write_text(yaml.safe_dump(gateway_config(tmp / "data", fake_provider.base_url)))
    gw = start_gateway(load_settings(path))
    yield gw
    gw.stop()


def test_openapi_document_is_served(fuzz_gateway):
    doc = httpx.get(fuzz_gateway.url + "/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert {"/v1/chat/completions", "/v1/embeddings", "/v1/messages", "/v1/models"} <= set(doc["paths"])


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_yields_a_5xx_or_a_non_json_error(case, fuzz_gateway):
    headers = {"authorization": f"Bearer {fuzz_gateway.key}"}
    response = case.call(base_url=fuzz_gateway.url, headers=headers, timeout=15)
    assert response.status_code < 500 or response.status_code in (502, 504), response.text[:500]
    if response.status_code in (502, 504):
        # only the provider may fail; the fuzzed models are unknown or the fake's, never a gateway crash
        assert response.json()["error"]["type"] in {"upstream_error", "timeout_error"}
    if response.status_code >= 400:
        assert "Traceback" not in response.text
        body = response.json()
        if case.path == "/v1/messages":  # Anthropic's error shape
            assert body.get("type") == "error" and {"type", "message"} <= set(body["error"]), response.text
        else:
            assert set(body["error"]) == {"message", "type", "param", "code"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
chat_shaped = st.fixed_dictionaries(
    {"model": json_values | st.sampled_from(["gpt-4o-mini", "fake-echo"]), "messages": json_values},
    optional={"stream": json_values, "max_tokens": json_values, "user": json_values, "stream_options": json_values},
)


@given(body=st.binary(max_size=300) | json_values.map(orjson.dumps) | chat_shaped.map(orjson.dumps))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_arbitrary_bodies_get_a_clean_json_answer(fuzz_gateway, body):
    r = httpx.post(
        fuzz_gateway.url + "/v1/chat/completions",
        content=body,
        headers={"authorization": f"Bearer {fuzz_gateway.key}", "content-type": "application/json"},
        timeout=15,
    )
    assert r.status_code in (200, 400, 404, 413, 429), r.text[:300]
    if r.status_code != 200:
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}


# -- mutation fuzzing: valid requests with one to three fields replaced, removed or added, deep inside -----------------

Path = tuple[str | int, ...]

CHAT_SEED = {
    "model": "gpt-4o-mini",
    "temperature": 0.5,
    "max_tokens": 16,
    "stream_options": {"include_usage": True},
    "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}}},
    "tools": [
        {
            "type": "function",
            "function": {"name": "look", "description": "look closer", "parameters": {"type": "object"}},
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "look"}},
    "messages": [
        {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat-512x512.png", "detail": "high"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "a cat"}]},
    ],
}
MESSAGES_SEED = {
    "model": "gpt-4o-mini",
    "max_tokens": 16,
    "system": [{"type": "text", "text": "be brief"}],
    "temperature": 0.5,
    "stop_sequences": ["END"],
    "metadata": {"user_id": "u-1"},
    "tools": [{"name": "look", "description": "look closer", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "tool", "name": "look"},
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "a note"}},
            ],
        },
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "look", "input": {"q": 1}}]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "a cat"}]}],
        },
    ],
}
EMBEDDINGS_SEED = {"model": "gpt-4o-mini", "input": ["one", "two"], "dimensions": 64, "encoding_format": "float"}
KEY_SEED = {
    "name": "fuzzed",
    "team_id": "team-a",
    "budget_usd": 1.5,
    "budget_period": "monthly",
    "rpm": 100,
    "tpm": 10_000,
    "cache": True,
    "compression": False,
    "models": ["gpt-4o-mini", "fake-echo"],
    "endpoints": ["chat", "/v1/embeddings"],
    "expires_in": 3600,
}
TEAM_SEED = {"budget_usd": 10.0, "period": "monthly", "models": ["gpt-4o-mini"], "endpoints": ["chat"]}


def _paths(value: object, at: Path = ()) -> list[Path]:
    out = [at] if at else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*at, i))
    return out


def _apply(body: object, mutation: tuple[Path, str, object]) -> None:
    path, op, value = mutation
    parent = body
    for part in path[:-1]:
        try:
            parent = parent[part]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return  # an earlier mutation removed the way here
    last = path[-1]
    if isinstance(parent, dict) and isinstance(last, str):
        if op == "delete":
            parent.pop(last, None)
        elif op == "add":
            parent[last + "_x"] = value
        else:
            parent[last] = value
    elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
        if op == "delete":
            del parent[last]
        elif op == "add":
            parent.append(value)
        else:
            parent[last] = value


def mutated(seed: dict) -> st.SearchStrategy[dict]:
    mutation = st.tuples(st.sampled_from(_paths(seed)), st.sampled_from(["replace", "delete", "add"]), json_values)

    def build(mutations: list[tuple[Path, str, object]]) -> dict:
        body = orjson.loads(orjson.dumps(seed))
        for m in mutations:
            _apply(body, m)
        return body

    return st.lists(mutation, min_size=1, max_size=3).map(build)


def _assert_clean(r: httpx.Response, *, anthropic_shape: bool = False) -> None:
    assert r.status_code < 500, r.text[:500]
    assert "Traceback" not in r.text
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/json"), r.text[:300]
        body = r.json()
        if anthropic_shape:
            assert body.get("type") == "error" and {"type", "message"} <= set(body["error"]), r.text
        else:
            assert set(body["error"]) == {"message", "type", "param", "code"}, r.text


def _send(gw, path: str, body: dict, method: str = "POST", **headers: str) -> httpx.Response:
    return httpx.request(
        method,
        gw.url + path,
        content=orjson.dumps(body),
        headers={"authorization": f"Bearer {gw.key}", "content-type": "application/json", **headers},
        timeout=15,
    )


@given(body=mutated(CHAT_SEED))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_mutated_chat_requests_never_get_a_5xx(fuzz_gateway, body):
    _assert_clean(_send(fuzz_gateway, "/v1/chat/completions", body))


@given(body=mutated({**CHAT_SEED, "stream": True}))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_mutated_streaming_chat_requests_never_get_a_5xx(fuzz_gateway, body):
    _assert_clean(_send(fuzz_gateway, "/v1/chat/completions", body))


@given(body=mutated(MESSAGES_SEED))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_mutated_anthropic_requests_never_get_a_5xx(fuzz_gateway, body):
    r = _send(fuzz_gateway, "/v1/messages", body, **{"anthropic-version": "2023-06-01"})
    _assert_clean(r, anthropic_shape=True)


@given(body=mutated(EMBEDDINGS_SEED))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_mutated_embeddings_requests_never_get_a_5xx(fuzz_gateway, body):
    _assert_clean(_send(fuzz_gateway, "/v1/embeddings", body))


@pytest.fixture(scope="module")
def admin_gateway(tmp_path_factory, fake_provider):
    import yaml

    from contracts.settings import load_settings
    from tests.gateway.conftest import gateway_config, start_gateway

    tmp = tmp_path_factory.mktemp("fuzz-admin")
    path = tmp / "apex.yaml"
    path.write_text(yaml.safe_dump(gateway_config(tmp / "data", fake_provider.base_url)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("APEX_MASTER_KEY", "fuzz-master-key-0123")
        gw = start_gateway(load_settings(path))
    gw.key = "fuzz-master-key-0123"  # the admin API's bearer
    key_id = gw.keys.list()[0].key_id
    yield gw, key_id
    gw.stop()


@given(body=mutated(KEY_SEED), big=st.sampled_from([2**63, 2**63 - 1, 2**64 - 1, -(2**63), 1e30, 1e308]))
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
def test_mutated_admin_bodies_never_get_a_5xx(admin_gateway, body, big):
    gw, key_id = admin_gateway
    _assert_clean(_send(gw, "/admin/keys", body))
    _assert_clean(_send(gw, f"/admin/keys/{key_id}", {**body, "name": "fuzzed"}, method="PATCH"))
    _assert_clean(_send(gw, "/admin/teams/team-fuzz", {**TEAM_SEED, "budget_usd": big}, method="PUT"))
    _assert_clean(_send(gw, f"/admin/keys/{key_id}", {"rpm": big}, method="PATCH"))


@given(body=mutated(TEAM_SEED))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_mutated_team_bodies_never_get_a_5xx(admin_gateway, body):
    gw, _ = admin_gateway
    _assert_clean(_send(gw, "/admin/teams/team-fuzz", body, method="PUT"))
