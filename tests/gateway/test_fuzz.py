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
