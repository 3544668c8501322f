"""The optimizer levers through the real gateway with the official ``openai`` SDK: semantic cache, prompt
compression and learned routing — what the client gets, what the provider sees, and what the events claim."""

from __future__ import annotations

import json
import time

import openai
import pytest
import yaml

from contracts.pricing import PriceTable
from contracts.settings import load_settings
from optimizers.compression import transforms
from tests.gateway.conftest import gateway_config, start_gateway

pytestmark = pytest.mark.slow

INSTRUCTION = "Solve the following math word problem.   Show the arithmetic.\n\n"
SHOTS = [
    ("Tom has 3 boxes of 12 pencils and gives away 7. How many are left?", "3 * 12 = 36; 36 - 7 = 29."),
    ("A train goes 60 km per hour for 2.5 hours. How far does it go?", "60 * 2.5 = 150 km."),
    ("Sara buys 4 notebooks at $2.50 and pays with $20. What is her change?", "4 * 2.50 = 10; 20 - 10 = 10."),
    ("A recipe needs 3 eggs per cake. How many eggs for 7 cakes?", "3 * 7 = 21 eggs."),
]
FEW_SHOT = (
    "".join(f"{INSTRUCTION}Question:  {q}\nAnswer:   {a}\n\n\n" for q, a in SHOTS)
    + f"{INSTRUCTION}Question:  Mia reads 18 pages a day. How many in 3 weeks?\nAnswer:"
)


@pytest.fixture
def opt_gateway(tmp_path, fake_provider):
    """A gateway whose strong/weak pair is served by the fake provider (so the upstream model is visible)."""
    started = []

    def make(**optimizers):
        cfg = gateway_config(tmp_path / f"gw{len(started)}", fake_provider.base_url)
        cfg["models"] += [
            {"name": "fake-strong", "provider": "fake", "upstream_model": "gpt-4o"},
            {"name": "fake-weak", "provider": "fake", "upstream_model": "gpt-4o-mini"},
        ]
        cfg["optimizers"] = {
            "auto_routing": {
                "strong_model": "fake-strong",
                "weak_model": "fake-weak",
                "policy_file": str(tmp_path / "policy.json"),
                "reload_seconds": 0.1,
            },
            **optimizers,
        }
        path = tmp_path / f"apex{len(started)}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        gw = start_gateway(load_settings(path))
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.stop()


def client(gw, key=None):
    return openai.OpenAI(base_url=gw.base_url, api_key=key or gw.key, max_retries=0)


def chat(c, content, *, model="fake-echo", headers=None, **kwargs):
    raw = c.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}], extra_headers=headers or {}, **kwargs
    )
    return raw.headers, raw.parse()


# -- compression ---------------------------------------------------------------------------------------------------


def test_compression_sends_fewer_tokens_and_claims_them_at_the_input_price(opt_gateway, fake_provider):
    gw = opt_gateway()
    headers, answer = chat(client(gw), FEW_SHOT, headers={"x-apex-compress": "on"})
    sent = fake_provider.requests[-1]["messages"][-1]["content"]
    assert len(sent) < len(FEW_SHOT)
    assert sent.count("Solve the following math word problem.") == 1  # the repeated instruction kept once
    assert "18 pages a day" in sent and "3 weeks?" in sent  # the question itself is untouched
    assert headers["x-apex-compression"] == "compressed"
    saved = int(headers["x-apex-compression-tokens-saved"])
    assert saved > 0
    ev = gw.events().row(0, named=True)
    assert ev["compression_status"] == "compressed" and ev["compression_tokens_saved"] == saved
    # the provider billed the compressed prompt; the claim is the tokens removed at the served model's input price
    assert ev["prompt_tokens"] == answer.usage.prompt_tokens
    price = PriceTable.from_litellm().lookup("gpt-4o-mini")
    assert ev["savings_compression_usd"] == pytest.approx(saved * price.input_cost_per_token, rel=1e-12)
    assert ev["input_cost_per_token"] == price.input_cost_per_token


def test_compression_is_opt_in(opt_gateway, fake_provider):
    gw = opt_gateway()
    chat(client(gw), FEW_SHOT)
    assert fake_provider.requests[-1]["messages"][-1]["content"] == FEW_SHOT
    ev = gw.events().row(0, named=True)
    assert ev["compression_status"] is None and ev["savings_compression_usd"] is None


def test_the_guard_sends_the_original_when_a_number_would_be_lost(opt_gateway, fake_provider, monkeypatch):
    def drop_a_number(work):
        for mw in work:
            for seg in mw.segments:
                seg.units = [u._replace(text=u.text.replace("18 pages", "some pages")) for u in seg.units]
        return True

    monkeypatch.setattr(transforms, "normalise_whitespace", drop_a_number)
    gw = opt_gateway()
    headers, _ = chat(client(gw), FEW_SHOT, headers={"x-apex-compress": "on"})
    assert fake_provider.requests[-1]["messages"][-1]["content"] == FEW_SHOT  # the original went out
    assert headers["x-apex-compression"] == "fallback: number lost: 18"
    ev = gw.events().row(0, named=True)
    assert ev["compression_status"] == "fallback: number lost: 18"
    assert ev["compression_tokens_saved"] == 0 and ev["savings_compression_usd"] is None


def test_a_key_can_opt_in_to_compression(opt_gateway, fake_provider):
    gw = opt_gateway()
    _, plain = gw.keys.create("squeezed", customer_id="cust-test", compression=True)
    headers, _ = chat(client(gw, plain), FEW_SHOT)
    assert headers["x-apex-compression"] == "compressed"
    # and a request can still say no
    headers, _ = chat(client(gw, plain), FEW_SHOT, headers={"x-apex-compress": "off"})
    assert "x-apex-compression" not in headers


def test_bad_optimizer_headers_are_400s_in_the_openai_shape(opt_gateway):
    gw = opt_gateway()
    for name, value in [
        ("x-apex-compress", "maybe"),
        ("x-apex-semantic-cache", "always"),
        ("x-apex-urgency", "yesterday"),
        ("x-apex-quality-target", "1.5"),
    ]:
        with pytest.raises(openai.BadRequestError) as exc:
            chat(client(gw), "hi", headers={name: value})
        assert exc.value.status_code == 400
        assert exc.value.body["type"] == "invalid_request_error"


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _json(path):
    return json.loads(path.read_text())


# -- semantic cache ------------------------------------------------------------------------------------------------

SEMANTIC = {"x-apex-semantic-cache": "on"}


def test_a_paraphrase_is_served_from_the_semantic_cache(opt_gateway, fake_provider):
    gw = opt_gateway()
    c = client(gw)
    before = len(fake_provider.requests)
    h1, first = chat(c, "How do I reset my password?", headers=SEMANTIC)
    assert h1["x-apex-cache"] == "miss"
    assert _wait_for(lambda: gw.settings.semantic_cache_dir.exists())
    # the insert happens after the answer is sent: wait for it rather than racing it
    h2, second = None, None
    for _ in range(40):
        h2, second = chat(c, "How can I reset my password?", headers=SEMANTIC)
        if h2["x-apex-cache"] == "hit":
            break
        time.sleep(0.05)
    assert h2["x-apex-cache"] == "hit" and h2["x-apex-cache-kind"] == "semantic"
    assert second.choices[0].message.content == first.choices[0].message.content  # the stored answer
    upstream = [r for r in fake_provider.requests[before:] if "reset my password" in json.dumps(r)]
    assert all("How do I reset" in json.dumps(r) for r in upstream)  # the paraphrase never went upstream
    events = gw.events().sort("ts_start")
    hit = events.filter(events["cache_status"] == "hit_semantic").row(0, named=True)
    miss = events.row(0, named=True)
    assert hit["cost_usd"] == 0.0 and hit["provider"] == "apex-cache"
    assert hit["savings_cache_usd"] == pytest.approx(miss["cost_usd"], rel=1e-12)  # the answer it did not buy
    assert hit["baseline_cost_usd"] == pytest.approx(miss["cost_usd"], rel=1e-12)
    assert 0.5 < hit["cache_similarity"] <= 1.0 and hit["cache_match_id"]
    assert float(h2["x-apex-cache-similarity"]) == pytest.approx(hit["cache_similarity"], abs=1e-4)


def _fill_then_ask(gw, c, stored, asked, headers=SEMANTIC):
    chat(c, stored, headers=headers)
    gw_cache_wait = time.monotonic() + 3
    while time.monotonic() < gw_cache_wait:  # let the background insert land
        if chat(c, stored, headers=headers)[0]["x-apex-cache"] == "hit":
            break
        time.sleep(0.05)
    return chat(c, asked, headers=headers)


def test_a_different_question_with_the_same_words_misses(opt_gateway, fake_provider):
    gw = opt_gateway()
    c = client(gw)
    headers, answer = _fill_then_ask(gw, c, "How do I learn Python?", "How do I learn Java?")
    assert headers["x-apex-cache"] == "miss"
    assert answer.choices[0].message.content == "echo: How do I learn Java?"  # answered upstream, not from Python
    ev = gw.events().sort("ts_start").row(-1, named=True)
    assert ev["cache_status"] == "miss" and ev["cost_usd"] > 0 and ev["savings_cache_usd"] is None


def _embedding_gateway(tmp_path, fake_url, model):
    cfg = gateway_config(tmp_path / "gw-embed", fake_url)
    cfg["models"] += [
        {"name": "embed-small", "provider": "fake", "upstream_model": "text-embedding-3-small"},
        {
            "name": "embed-broken",
            "provider": "fake",
            "upstream_model": "fake-500",
            "price_model": "text-embedding-3-small",
        },
    ]
    cfg["cache"] = {"semantic": {"embedding_model": model}}
    path = tmp_path / "apex-embed.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return start_gateway(load_settings(path))


def test_the_semantic_cache_can_embed_with_a_provider_model(tmp_path, fake_provider):
    """cache.semantic.embedding_model: lookups are embedded by that model through Apex's own embeddings path, and
    each lookup is a priced event of the asking key (its cost is spend like any other call)."""
    gw = _embedding_gateway(tmp_path, fake_provider.base_url, "embed-small")
    try:
        c = client(gw)
        before = len(fake_provider.requests)
        question = "What is the refund window for annual plans?"
        h1, first = chat(c, question, headers=SEMANTIC)
        assert h1["x-apex-cache"] == "miss"
        h2 = None
        for _ in range(40):  # the insert lands after the answer was sent
            h2, second = chat(c, question, headers=SEMANTIC)
            if h2["x-apex-cache"] == "hit":
                break
            time.sleep(0.05)
        assert h2 is not None and h2["x-apex-cache"] == "hit" and h2["x-apex-cache-kind"] == "semantic"
        assert second.choices[0].message.content == first.choices[0].message.content
        sent = fake_provider.requests[before:]
        embedded = [r for r in sent if r.get("model") == "text-embedding-3-small"]
        assert embedded and all(r["input"] == question for r in embedded)
        assert (gw.settings.semantic_cache_dir / "provider-embed-small").is_dir()  # its own store (8-dim vectors)
    finally:
        events = gw.events().sort("ts_start")
    lookups = events.filter(events["endpoint"] == "/v1/embeddings")
    assert lookups.height == len(embedded)
    row = lookups.row(0, named=True)
    price = PriceTable.from_litellm().lookup("text-embedding-3-small")
    assert row["feature"] == "apex:semantic-cache" and row["customer_id"] == "cust-test"
    assert row["http_status"] == 200 and row["prompt_tokens"] == len(question.split())
    assert row["cost_usd"] == pytest.approx(row["prompt_tokens"] * price.input_cost_per_token, rel=1e-9)
    assert events.filter(events["cache_status"] == "hit_semantic").height >= 1


def test_a_failing_embedding_model_leaves_the_call_uncached_not_failed(tmp_path, fake_provider):
    gw = _embedding_gateway(tmp_path, fake_provider.base_url, "embed-broken")
    try:
        headers, answer = chat(client(gw), "Where is my invoice?", headers=SEMANTIC)
        assert headers["x-apex-cache"] == "bypass"
        assert answer.choices[0].message.content == "echo: Where is my invoice?"
    finally:
        events = gw.events()
    failed = events.filter(events["endpoint"] == "/v1/embeddings").row(0, named=True)
    assert failed["http_status"] >= 500 and failed["error_type"].startswith("upstream")
    assert failed["feature"] == "apex:semantic-cache" and failed["cost_usd"] is None
    served = events.filter(events["endpoint"] == "/v1/chat/completions").row(0, named=True)
    assert served["http_status"] == 200 and served["cache_status"] == "bypass" and served["cost_usd"] > 0


def test_another_tenant_never_hits_the_semantic_cache(opt_gateway):
    gw = opt_gateway()
    c = client(gw)
    _fill_then_ask(gw, c, "How do I reset my password?", "How do I reset my password?")
    _, other_key = gw.keys.create("other", customer_id="another-customer")
    headers, _ = chat(client(gw, other_key), "How do I reset my password?", headers=SEMANTIC)
    assert headers["x-apex-cache"] == "miss"


def test_shadow_mode_logs_the_would_be_hit_and_serves_nothing(opt_gateway, fake_provider):
    gw = opt_gateway()
    _, shadow_key = gw.keys.create("shadow", customer_id="cust-shadow", semantic_cache="shadow")
    c = client(gw, shadow_key)
    chat(c, "How do I reset my password?")
    time.sleep(0.3)
    before = len(fake_provider.requests)
    headers, answer = chat(c, "How can I reset my password?")
    assert len(fake_provider.requests) == before + 1  # it went upstream
    assert answer.choices[0].message.content == "echo: How can I reset my password?"
    assert headers["x-apex-cache"] == "shadow_hit"
    ev = gw.events().sort("ts_start").row(-1, named=True)
    assert ev["cache_status"] == "shadow_hit" and ev["cache_match_id"] and ev["cache_similarity"] > 0.5
    assert ev["cost_usd"] > 0 and ev["savings_cache_usd"] is None


@pytest.mark.parametrize(
    ("messages", "extra"),
    [
        (
            [
                {"role": "user", "content": "How do I reset my password?"},
                {"role": "assistant", "content": "Use the link."},
                {"role": "user", "content": "And then?"},
            ],
            {},
        ),
        ([{"role": "user", "content": "How do I reset my password?"}], {"temperature": 0.7}),
    ],
    ids=["multi-turn", "sampled"],
)
def test_ineligible_requests_bypass_the_semantic_cache(opt_gateway, messages, extra):
    gw = opt_gateway()
    raw = client(gw).chat.completions.with_raw_response.create(
        model="fake-echo", messages=messages, extra_headers=SEMANTIC, **extra
    )
    assert raw.headers["x-apex-cache"] == "bypass"
    assert gw.events().row(0, named=True)["cache_status"] == "bypass"


def test_a_semantic_hit_is_replayed_as_a_stream(opt_gateway):
    gw = opt_gateway()
    c = client(gw)
    _, first = _fill_then_ask(gw, c, "How do I reset my password?", "How do I reset my password?")
    chunks = list(
        c.chat.completions.create(
            model="fake-echo",
            messages=[{"role": "user", "content": "How can I reset my password?"}],
            stream=True,
            extra_headers=SEMANTIC,
        )
    )
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == first.choices[0].message.content
    ev = gw.events().sort("ts_start").row(-1, named=True)
    assert ev["cache_status"] == "hit_semantic" and ev["is_stream"]


# -- learned routing -----------------------------------------------------------------------------------------------

EASY = [f"What is the capital of country number {i}?" for i in range(40)] + [
    f"Translate word {i} into Spanish." for i in range(40)
]
HARD = [
    f"Prove step by step that for every integer n > {i}, the sum of the first n odd numbers equals n squared, then "
    f"compute 37 * {i + 11} + 1234 / 2 and justify each equation carefully with a full derivation."
    for i in range(80)
]


def _feedback(strong_needed_on_easy: bool = False):
    import polars as pl

    rows = []
    for p in EASY:
        rows += [(p, "strong-m", 1.0), (p, "weak-m", 0.0 if strong_needed_on_easy else 1.0)]
    for p in HARD:
        rows += [(p, "strong-m", 1.0), (p, "weak-m", 0.0)]
    return pl.DataFrame(rows, schema=["prompt", "model", "score"], orient="row")


def _write_policy(path, **kwargs):
    from optimizers.routing import train_policy, write_policy

    policy = train_policy(
        _feedback(**kwargs), "strong-m", "weak-m", prices={"strong-m": (1e-5, 3e-5), "weak-m": (1e-7, 1e-7)}
    )
    write_policy(policy, path)
    return policy


def test_apex_auto_sends_an_easy_prompt_to_the_cheap_model_and_a_hard_one_to_the_strong(
    opt_gateway, fake_provider, tmp_path
):
    policy = _write_policy(tmp_path / "policy.json")
    gw = opt_gateway()
    c = client(gw)
    # at the 100% target the policy may not trade any quality: only prompts like the easy ones go cheap
    target = {"x-apex-quality-target": "1.0"}
    h_easy, easy = chat(c, "What is the capital of France?", model="apex/auto", headers=target)
    assert fake_provider.requests[-1]["model"] == "gpt-4o-mini"
    h_hard, hard = chat(c, HARD[3].replace("37", "41"), model="apex/auto", headers=target)
    assert fake_provider.requests[-1]["model"] == "gpt-4o"
    assert h_easy["x-apex-route"].startswith("auto: weak") and h_hard["x-apex-route"].startswith("auto: strong")
    assert h_easy["x-apex-policy-version"] == policy["policy_version"]
    ev = gw.events().sort("ts_start")
    weak, strong = ev.row(0, named=True), ev.row(1, named=True)
    prices = PriceTable.from_litellm()
    for e in (weak, strong):
        assert e["requested_model"] == "apex/auto" and e["baseline_model"] == "gpt-4o"
        assert e["policy_version"] == policy["policy_version"]
        # routing savings = baseline (strong) cost - served cost, for the same tokens
        base = prices.price("gpt-4o", e["prompt_tokens"], e["completion_tokens"]).cost_usd
        assert e["baseline_cost_usd"] == pytest.approx(base, rel=1e-12)
        assert e["savings_routing_usd"] == pytest.approx(e["baseline_cost_usd"] - e["cost_usd"], rel=1e-9, abs=1e-15)
    assert weak["served_model"] == "gpt-4o-mini" and weak["savings_routing_usd"] > 0
    assert strong["served_model"] == "gpt-4o" and strong["savings_routing_usd"] == 0
    assert weak["routing_decision"].startswith("auto: weak")


def test_urgency_high_always_gets_the_strong_model(opt_gateway, fake_provider, tmp_path):
    _write_policy(tmp_path / "policy.json")
    gw = opt_gateway()
    headers, _ = chat(
        client(gw), "What is the capital of France?", model="apex/auto", headers={"x-apex-urgency": "high"}
    )
    assert fake_provider.requests[-1]["model"] == "gpt-4o"
    assert headers["x-apex-route"].startswith("auto: strong")


def test_a_new_policy_file_is_picked_up_without_a_restart(opt_gateway, fake_provider, tmp_path):
    first = _write_policy(tmp_path / "policy.json")
    gw = opt_gateway()
    c = client(gw)
    h1, _ = chat(c, "What is the capital of France?", model="apex/auto")
    assert h1["x-apex-policy-version"] == first["policy_version"] and h1["x-apex-route"].startswith("auto: weak")
    second = _write_policy(tmp_path / "policy.json", strong_needed_on_easy=True)
    assert second["policy_version"] != first["policy_version"]
    assert _wait_for(
        lambda: (
            chat(c, "What is the capital of Spain?", model="apex/auto")[0]["x-apex-policy-version"]
            == second["policy_version"]
        )
    )
    h3, _ = chat(c, "What is the capital of France?", model="apex/auto")
    assert h3["x-apex-route"].startswith("auto: strong")  # the new policy says even easy prompts need it


def test_without_a_policy_apex_auto_is_served_by_the_strong_model(opt_gateway, fake_provider):
    gw = opt_gateway()
    headers, _ = chat(client(gw), "What is the capital of France?", model="apex/auto")
    assert fake_provider.requests[-1]["model"] == "gpt-4o"
    assert "x-apex-route" not in headers  # nothing was decided, so nothing is claimed
    ev = gw.events().row(0, named=True)
    assert ev["routing_decision"] == "auto: strong (no routing policy loaded yet)"
    assert ev["savings_routing_usd"] is None and ev["policy_version"] is None


def test_apex_auto_is_listed_and_a_key_can_opt_in_for_the_strong_model(opt_gateway, fake_provider, tmp_path):
    _write_policy(tmp_path / "policy.json")
    gw = opt_gateway()
    assert "apex/auto" in [m.id for m in client(gw).models.list().data]
    _, auto_key = gw.keys.create("auto", customer_id="cust-test", auto_route=True)
    headers, _ = chat(client(gw, auto_key), "What is the capital of France?", model="fake-strong")
    assert fake_provider.requests[-1]["model"] == "gpt-4o-mini"
    assert headers["x-apex-route"].startswith("auto: weak")
    # without the opt-in the same request is left alone
    chat(client(gw), "What is the capital of France?", model="fake-strong")
    assert fake_provider.requests[-1]["model"] == "gpt-4o"
