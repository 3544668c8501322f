"""The optimizer levers through the real gateway with the official ``openai`` SDK: semantic cache, prompt
compression and learned routing — what the client gets, what the provider sees, and what the events claim."""

from __future__ import annotations

import json
import time

import openai
import pytest
import yaml

from gateway.config import load_settings
from gateway.pricing import PriceTable
from optimizers.compression import transforms
from tests.gateway.conftest import gateway_config, start_gateway

pytestmark = pytest.mark.slow

FEW_SHOT = "".join(
    f"Solve the following math word problem.   Show the arithmetic.\n\nQuestion:  {q}\nAnswer:   {a}\n\n\n"
    for q, a in [
        ("Tom has 3 boxes of 12 pencils and gives away 7. How many are left?", "3 * 12 = 36; 36 - 7 = 29."),
        ("A train goes 60 km per hour for 2.5 hours. How far does it go?", "60 * 2.5 = 150 km."),
        ("Sara buys 4 notebooks at $2.50 and pays with $20. What is her change?", "4 * 2.50 = 10; 20 - 10 = 10."),
        ("A recipe needs 3 eggs per cake. How many eggs for 7 cakes?", "3 * 7 = 21 eggs."),
    ]
) + "Solve the following math word problem.   Show the arithmetic.\n\nQuestion:  Mia reads 18 pages a day. How many in 3 weeks?\nAnswer:"


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
