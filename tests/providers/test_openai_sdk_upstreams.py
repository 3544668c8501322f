"""The official openai SDK through Apex to each translated upstream kind: answers, tools, streams, usage, cost."""

from __future__ import annotations

import json

import openai
import pytest

from sandbox.fake_anthropic import anthropic_extra_input_tokens
from sandbox.fake_gemini import gemini_extra_prompt_tokens
from sandbox.fake_provider import openai_extra_prompt_tokens
from tests.providers.conftest import ECHO, MSG, WEATHER_TOOL, expected_cost, price

SYSTEM = {"role": "system", "content": "Be brief."}
WEATHER = [{"role": "user", "content": "What's the weather in Paris?"}]

# model asked for, price-table model, provider kind, fake, prompt tokens the fake counts for [SYSTEM, *MSG]
UPSTREAMS = [
    pytest.param("claude-haiku-4-5", "claude-haiku-4-5", "anthropic", "anthropic", 12, id="anthropic"),
    pytest.param("gemini-2.5-flash", "gemini-2.5-flash", "gemini", "gemini", 12, id="gemini"),
    pytest.param("vertex-flash", "gemini-2.5-flash", "vertex", "gemini", 12, id="vertex"),
    pytest.param("azure-mini", "gpt-4o-mini", "azure", "openai", 16, id="azure"),
]
UPSTREAM_URL = {
    "anthropic": None,
    "gemini": "/v1beta/models/gemini-2.5-flash:{method}",
    "vertex": "/v1/projects/proj-1/locations/us-central1/publishers/google/models/gemini-2.5-flash:{method}",
    "azure": "/openai/deployments/prod-gpt4o-mini/chat/completions?api-version=2024-10-21",
}


def weather_prompt_tokens(kind: str, sent: dict) -> int:
    """The fakes bill tool definitions as their providers do, on top of the 9 words of WEATHER."""
    if kind == "anthropic":
        return 9 + anthropic_extra_input_tokens(sent)
    if kind == "azure":
        return 9 + openai_extra_prompt_tokens(sent, "")
    return 9 + gemini_extra_prompt_tokens(sent)


def client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)


def check_upstream_request(kind: str, fake, method: str) -> None:
    headers = {k.lower(): v for k, v in fake.headers[-1].items()}
    sent = fake.requests[-1]
    if kind == "anthropic":
        assert headers["x-api-key"] == "sk-ant-test" and headers["anthropic-version"] == "2023-06-01"
        assert sent["system"] == "Be brief." and (sent["max_tokens"], sent["temperature"]) == (50, 0.2)
        assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": MSG[0]["content"]}]}]
        return
    assert fake.urls[-1].split("?alt=")[0] == UPSTREAM_URL[kind].format(method=method)
    if kind == "azure":
        assert headers["api-key"] == "azure-test-key" and "authorization" not in headers
    elif kind == "gemini":
        assert headers["x-goog-api-key"] == "gemini-test-key"
    else:
        assert headers["authorization"] == "Bearer vertex-test-token"
    if kind in ("gemini", "vertex"):
        assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
        assert sent["contents"] == [{"role": "user", "parts": [{"text": MSG[0]["content"]}]}]
        assert sent["generationConfig"] == {"maxOutputTokens": 50, "temperature": 0.2}


@pytest.mark.parametrize(("model", "price_model", "kind", "fake", "prompt"), UPSTREAMS)
def test_sync_answer_usage_and_cost(gw, fakes, model, price_model, kind, fake, prompt):
    resp = client(gw).chat.completions.create(model=model, messages=[SYSTEM, *MSG], max_tokens=50, temperature=0.2)
    assert resp.choices[0].message.content == ECHO
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (prompt, 7)
    check_upstream_request(kind, fakes[fake], "generateContent")

    ev = gw.events().row(0, named=True)
    assert ev["provider_kind"] == kind and ev["http_status"] == 200 and ev["endpoint"] == "/v1/chat/completions"
    assert (ev["prompt_tokens"], ev["completion_tokens"], ev["cached_tokens"]) == (prompt, 7, 0)
    assert ev["usage_source"] == "provider" and ev["price_status"] == "priced"
    assert ev["cost_usd"] == pytest.approx(expected_cost(price_model, prompt, 7), abs=1e-12)


@pytest.mark.parametrize(("model", "price_model", "kind", "fake", "prompt"), UPSTREAMS)
def test_stream_text_usage_and_cost(gw, fakes, model, price_model, kind, fake, prompt):
    stream = client(gw).chat.completions.create(
        model=model,
        messages=[SYSTEM, *MSG],
        max_tokens=50,
        temperature=0.2,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ECHO
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (prompt, 7)
    check_upstream_request(kind, fakes[fake], "streamGenerateContent")

    ev = gw.events().row(0, named=True)
    assert ev["is_stream"] is True and ev["http_status"] == 200 and ev["finish_reason"] == "stop"
    assert (ev["prompt_tokens"], ev["completion_tokens"], ev["usage_source"]) == (prompt, 7, "provider")
    assert ev["cost_usd"] == pytest.approx(expected_cost(price_model, prompt, 7), abs=1e-12)


@pytest.mark.parametrize(("model", "price_model", "kind", "fake", "prompt"), UPSTREAMS)
def test_tool_call_round_trip(gw, fakes, model, price_model, kind, fake, prompt):
    resp = client(gw).chat.completions.create(model=model, messages=WEATHER, tools=[WEATHER_TOOL], tool_choice="auto")
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    prompt = weather_prompt_tokens(kind, fakes[fake].requests[-1])
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (prompt, 8)

    sent = fakes[fake].requests[-1]
    if kind == "anthropic":
        assert sent["tools"] == [
            {
                "name": "get_weather",
                "description": "Current weather in a city",
                "input_schema": WEATHER_TOOL["function"]["parameters"],
            }
        ]
        assert sent["tool_choice"] == {"type": "auto"}
    elif kind in ("gemini", "vertex"):
        [decl] = sent["tools"][0]["functionDeclarations"]
        assert decl["name"] == "get_weather" and "additionalProperties" not in decl["parameters"]
        assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}

    # the answer goes back as a tool result, translated for the upstream
    follow_up = [
        *WEATHER,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18C"},
    ]
    again = client(gw).chat.completions.create(model=model, messages=follow_up, tools=[WEATHER_TOOL])
    assert again.choices[0].message.content is not None
    sent = fakes[fake].requests[-1]
    if kind == "anthropic":
        assert sent["messages"][1]["content"][-1] == {
            "type": "tool_use",
            "id": call.id,
            "name": "get_weather",
            "input": {"city": "Paris"},
        }
        assert sent["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}]
    elif kind in ("gemini", "vertex"):
        assert sent["contents"][1]["parts"][-1] == {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
        assert sent["contents"][2] == {
            "role": "user",
            "parts": [{"functionResponse": {"name": "get_weather", "response": {"content": "18C"}}}],
        }

    events = gw.events()
    first = events.filter(events["finish_reason"] == "tool_calls").row(0, named=True)
    assert first["cost_usd"] == pytest.approx(expected_cost(price_model, prompt, 8), abs=1e-12)


@pytest.mark.parametrize(("model", "price_model", "kind", "fake", "prompt"), UPSTREAMS)
def test_streamed_tool_call(gw, fakes, model, price_model, kind, fake, prompt):
    stream = client(gw).chat.completions.create(model=model, messages=WEATHER, tools=[WEATHER_TOOL], stream=True)
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for tc in choice.delta.tool_calls or ():
                entry = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
                entry["id"] = tc.id or entry["id"]
                entry["name"] += (tc.function.name or "") if tc.function else ""
                entry["arguments"] += (tc.function.arguments or "") if tc.function else ""
    assert finish == "tool_calls"
    assert list(calls) == [0] and calls[0]["id"] and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
    ev = gw.events().row(0, named=True)
    prompt = weather_prompt_tokens(kind, fakes[fake].requests[-1])
    assert (ev["prompt_tokens"], ev["completion_tokens"], ev["finish_reason"]) == (prompt, 8, "tool_calls")


@pytest.mark.parametrize(
    ("model", "price_model", "prompt", "cached", "written"),
    [
        pytest.param("claude-cached", "claude-haiku-4-5", 10 + 100 + 10, 100, 10, id="anthropic-cache-read-and-write"),
        pytest.param("gemini-cached", "gemini-2.5-flash", 10 + 100, 100, 0, id="gemini-cached-content"),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["sync", "stream"])
def test_cached_prompt_tokens_are_priced_at_the_cache_rate(gw, model, price_model, prompt, cached, written, stream):
    c = client(gw)
    if stream:
        chunks = list(
            c.chat.completions.create(model=model, messages=MSG, stream=True, stream_options={"include_usage": True})
        )
        usage = chunks[-1].usage
    else:
        usage = c.chat.completions.create(model=model, messages=MSG).usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.prompt_tokens_details.cached_tokens) == (
        prompt,
        7,
        cached,
    )
    ev = gw.events().row(0, named=True)
    assert (ev["prompt_tokens"], ev["cached_tokens"], ev["cache_write_tokens"]) == (prompt, cached, written)
    assert ev["cost_usd"] == pytest.approx(expected_cost(price_model, prompt, 7, cached, written), abs=1e-12)
    if written:
        # cache writes cost more than plain input (1.25x for Anthropic's 5-minute cache): never priced as input
        p = price(price_model)
        assert p["cache_creation_input_token_cost"] > p["input_cost_per_token"]
        assert ev["cache_write_cost_per_token"] == p["cache_creation_input_token_cost"]


@pytest.mark.parametrize(
    ("model", "retry_after"),
    [
        pytest.param("anth-429", "3", id="anthropic"),
        pytest.param("gem-429", "3", id="gemini"),
        pytest.param("vertex-429", "3", id="vertex"),
        pytest.param("azure-429", "2", id="azure"),
    ],
)
def test_upstream_429_passes_retry_after(gw, model, retry_after):
    with pytest.raises(openai.RateLimitError) as exc:
        client(gw).chat.completions.create(model=model, messages=MSG)
    assert exc.value.response.headers["retry-after"] == retry_after
    ev = gw.events().row(0, named=True)
    assert (ev["http_status"], ev["error_type"]) == (429, "upstream_rate_limited")


def test_anthropic_overloaded_is_503(gw):
    with pytest.raises(openai.InternalServerError) as exc:
        client(gw).chat.completions.create(model="anth-529", messages=MSG)
    assert exc.value.status_code == 503 and "Overloaded" in exc.value.message
    assert gw.events().row(0, named=True)["error_type"] == "upstream_overloaded"


@pytest.mark.parametrize(
    ("model", "error_type"),
    [
        pytest.param("anth-cut", "upstream_stream_interrupted", id="anthropic-cut"),
        pytest.param("anth-error", "upstream_stream_error", id="anthropic-error-event"),
        pytest.param("gem-cut", "upstream_stream_interrupted", id="gemini-cut"),
        pytest.param("vertex-cut", "upstream_stream_interrupted", id="vertex-cut"),
        pytest.param("azure-cut", "upstream_stream_interrupted", id="azure-cut"),
    ],
)
def test_stream_cut_mid_answer_reaches_the_client_and_is_recorded(gw, model, error_type):
    text = []
    with pytest.raises(openai.APIError):
        for chunk in client(gw).chat.completions.create(model=model, messages=MSG, stream=True):
            text.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(text) == "echo: What"
    ev = gw.events().row(0, named=True)
    assert (ev["http_status"], ev["error_type"], ev["usage_source"]) == (502, error_type, "estimated")
    assert ev["completion_tokens"] > 0  # what was streamed is billed
