"""``POST /v1/embeddings`` through the official openai SDK: each upstream kind, validation, and the priced event."""

from __future__ import annotations

import openai
import pytest

from contracts.tokens import count_text_tokens
from tests.providers.conftest import price

TEXTS = ["hello world", "a b c"]


def client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)


@pytest.mark.parametrize(
    ("model", "price_model", "kind", "dims", "tokens", "url"),
    [
        pytest.param(
            "text-embedding-3-small", "text-embedding-3-small", "openai_compatible", 8, 5, "/v1/embeddings", id="openai"
        ),
        pytest.param(
            "azure-embed",
            "text-embedding-3-small",
            "azure",
            8,
            5,
            "/openai/deployments/embed-deploy/embeddings?api-version=2024-10-21",
            id="azure",
        ),
        pytest.param(
            "text-embedding-004",
            "text-embedding-004",
            "gemini",
            8,
            sum(count_text_tokens(t, "text-embedding-004") for t in TEXTS),
            "/v1beta/models/text-embedding-004:batchEmbedContents",
            id="gemini",
        ),
        pytest.param("sim-embed", "text-embedding-3-small", "simulated", 256, None, None, id="simulated"),
    ],
)
def test_embeddings_are_priced_on_the_event(gw, fakes, model, price_model, kind, dims, tokens, url):
    resp = client(gw).embeddings.create(model=model, input=TEXTS)
    assert [d.index for d in resp.data] == [0, 1]
    assert all(len(d.embedding) == dims for d in resp.data)
    if tokens is None:  # simulated: tokenizer counts
        tokens = sum(count_text_tokens(t, "text-embedding-3-small") for t in TEXTS)
    assert resp.usage.prompt_tokens == tokens
    if url is not None:
        fake = fakes["gemini" if kind == "gemini" else "openai"]
        assert fake.urls[-1] == url
    if kind == "gemini":
        assert fakes["gemini"].requests[-1] == {
            "requests": [{"model": "models/text-embedding-004", "content": {"parts": [{"text": t}]}} for t in TEXTS]
        }

    ev = gw.events().row(0, named=True)
    assert ev["endpoint"] == "/v1/embeddings" and ev["provider_kind"] == kind and ev["http_status"] == 200
    assert (ev["prompt_tokens"], ev["completion_tokens"]) == (tokens, 0)
    assert ev["price_status"] == "priced"
    assert ev["cost_usd"] == pytest.approx(tokens * price(price_model)["input_cost_per_token"], abs=1e-15)
    assert ev["cost_usd"] > 0


def test_simulated_embeddings_are_deterministic_unit_vectors(gw):
    c = client(gw)
    a = c.embeddings.create(model="sim-embed", input="same text").data[0].embedding
    b = c.embeddings.create(model="sim-embed", input=["same text", "other"]).data
    assert a == b[0].embedding and a != b[1].embedding
    assert sum(v * v for v in a) == pytest.approx(1.0, abs=1e-4)
    assert gw.events().height == 2


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        pytest.param({"input": "x"}, 400, "model", id="no-model"),
        pytest.param({"model": "sim-embed"}, 400, "input", id="no-input"),
        pytest.param({"model": "sim-embed", "input": []}, 400, "input", id="empty-list"),
        pytest.param({"model": "sim-embed", "input": [1, "a"]}, 400, "input[1]", id="mixed-list"),
        pytest.param({"model": "nope", "input": "x"}, 404, "model", id="unknown-model"),
        pytest.param({"model": "claude-haiku-4-5", "input": "x"}, 400, "model", id="anthropic-has-no-embeddings"),
        pytest.param({"model": "text-embedding-004", "input": [1, 2, 3]}, 400, "input", id="gemini-rejects-token-ids"),
    ],
)
def test_invalid_requests_are_openai_errors_with_one_event(gw, body, status, param):
    with pytest.raises(openai.APIStatusError) as exc:
        client(gw).post("/embeddings", body=body, cast_to=object)
    assert exc.value.status_code == status and exc.value.body["param"] == param
    ev = gw.events().row(0, named=True)
    assert (ev["endpoint"], ev["http_status"]) == ("/v1/embeddings", status)


def test_token_id_input_is_accepted(gw):
    resp = client(gw).embeddings.create(model="sim-embed", input=[[1, 2, 3], [4, 5]])
    assert len(resp.data) == 2 and resp.usage.prompt_tokens == 5


def test_embeddings_count_against_rate_limits_and_budgets(gw):
    _, limited = gw.keys.create("embed-rpm", customer_id="c", rpm=1)
    c = openai.OpenAI(base_url=gw.base_url, api_key=limited, max_retries=0)
    c.embeddings.create(model="sim-embed", input=TEXTS)
    with pytest.raises(openai.RateLimitError) as info:
        c.embeddings.create(model="sim-embed", input=TEXTS)
    assert info.value.body["code"] == "rate_limit_exceeded"
    assert int(info.value.response.headers["retry-after"]) >= 1

    _, broke = gw.keys.create("embed-budget", customer_id="c", budget_usd=1e-9)
    with pytest.raises(openai.RateLimitError) as info:
        openai.OpenAI(base_url=gw.base_url, api_key=broke, max_retries=0).embeddings.create(
            model="sim-embed", input=TEXTS
        )
    assert info.value.body["code"] == "insufficient_quota"


def test_embeddings_fail_over_to_the_next_deployment(gw, fakes):
    """A deployment answering 500 costs a retry, not the call: embeddings share chat's routing."""
    for _ in range(4):
        out = client(gw).embeddings.create(model="embed-failover", input=TEXTS)
        assert len(out.data) == 2
    failed = [b for b in fakes["openai"].requests if b.get("model") == "fake-500"]
    assert failed  # the failing deployment was tried (until its breaker opened or the balancer moved on)
    events = gw.events()
    assert events.height == 4
    assert set(events["http_status"].to_list()) == {200}
    assert set(events["served_model"].to_list()) == {"embed-deploy"}
    assert set(events["provider_kind"].to_list()) == {"azure"}
    retried = [d for d in events["routing_decision"].to_list() if d]
    assert retried and all(d.startswith("retry:") for d in retried)
    p = price("text-embedding-3-small")
    assert events["cost_usd"].to_list() == pytest.approx([5 * p["input_cost_per_token"]] * 4, abs=1e-15)
