"""The official anthropic SDK against Apex's ``POST /v1/messages``, served by an OpenAI-compatible upstream and by
Anthropic itself (the fake): sync, async, streaming, tools, errors, and the events they leave."""

from __future__ import annotations

import asyncio

import anthropic
import httpx
import pytest

from tests.providers.conftest import ECHO, MSG, expected_cost

TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
WEATHER = [{"role": "user", "content": "What's the weather in Paris?"}]

# model asked for, prompt tokens the upstream's fake counts for system "Be brief." + MSG
SERVED_BY = [
    pytest.param("gpt-4o-mini", 16, id="openai-compatible-upstream"),
    pytest.param("claude-haiku-4-5", 12, id="anthropic-upstream"),
]


def client(gw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=gw.key, max_retries=0)


@pytest.mark.parametrize(("model", "prompt"), SERVED_BY)
def test_sync_message(gw, model, prompt):
    raw = client(gw).messages.with_raw_response.create(model=model, max_tokens=100, system="Be brief.", messages=MSG)
    msg = raw.parse()
    assert msg.type == "message" and msg.role == "assistant" and msg.model == model
    assert [b.type for b in msg.content] == ["text"] and msg.content[0].text == ECHO
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (prompt, 7)

    ev = gw.events().row(0, named=True)
    assert ev["request_id"] == raw.headers["x-request-id"]
    assert ev["endpoint"] == "/v1/messages" and ev["http_status"] == 200 and ev["requested_model"] == model
    assert (ev["prompt_tokens"], ev["completion_tokens"], ev["usage_source"]) == (prompt, 7, "provider")
    assert ev["cost_usd"] == pytest.approx(expected_cost(model, prompt, 7), abs=1e-12)


@pytest.mark.parametrize(("model", "prompt"), SERVED_BY)
def test_async_messages(gw, model, prompt):
    async def main() -> list[anthropic.types.Message]:
        async with anthropic.AsyncAnthropic(base_url=gw.url, api_key=gw.key, max_retries=0) as c:
            calls = [
                c.messages.create(model=model, max_tokens=100, messages=[{"role": "user", "content": f"question {i}"}])
                for i in range(5)
            ]
            return await asyncio.gather(*calls)

    answers = asyncio.run(main())
    assert sorted(m.content[0].text for m in answers) == [f"echo: question {i}" for i in range(5)]
    events = gw.events()
    assert events.height == 5 and (events["endpoint"] == "/v1/messages").all() and (events["cost_usd"] > 0).all()


@pytest.mark.parametrize(("model", "prompt"), SERVED_BY)
def test_streaming_message(gw, model, prompt):
    with client(gw).messages.stream(model=model, max_tokens=100, system="Be brief.", messages=MSG) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == ECHO
    assert final.stop_reason == "end_turn" and final.content[0].text == ECHO
    assert (final.usage.input_tokens, final.usage.output_tokens) == (prompt, 7)
    ev = gw.events().row(0, named=True)
    assert ev["is_stream"] is True and ev["endpoint"] == "/v1/messages" and ev["http_status"] == 200
    assert ev["cost_usd"] == pytest.approx(expected_cost(model, prompt, 7), abs=1e-12)


@pytest.mark.parametrize(("model", "prompt"), SERVED_BY)
@pytest.mark.parametrize("stream", [False, True], ids=["sync", "stream"])
def test_tool_use(gw, model, prompt, stream):
    c = client(gw)
    if stream:
        with c.messages.stream(model=model, max_tokens=100, tools=[TOOL], messages=WEATHER) as s:
            msg = s.get_final_message()
    else:
        msg = c.messages.create(model=model, max_tokens=100, tools=[TOOL], messages=WEATHER)
    assert msg.stop_reason == "tool_use"
    assert [b.type for b in msg.content] == ["text", "tool_use"]
    assert msg.content[0].text == "Let me check."
    tool_use = msg.content[1]
    assert tool_use.name == "get_weather" and tool_use.input == {"city": "Paris"} and tool_use.id

    # the tool result goes back in Anthropic form and reaches the upstream translated
    follow_up = [
        *WEATHER,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "18C"}]},
    ]
    again = c.messages.create(model=model, max_tokens=100, tools=[TOOL], messages=follow_up)
    assert again.stop_reason == "end_turn"
    events = gw.events()
    assert events.height == 2 and events["finish_reason"].to_list() == ["tool_calls", "stop"]


def test_tool_result_reaches_an_openai_upstream_as_a_tool_message(gw, fakes):
    follow_up = [
        *WEATHER,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]},
    ]
    client(gw).messages.create(model="gpt-4o-mini", max_tokens=100, tools=[TOOL], messages=follow_up)
    sent = fakes["openai"].requests[-1]
    assert sent["messages"][1]["tool_calls"] == [
        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    ]
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"}
    assert sent["tools"][0]["function"]["parameters"] == TOOL["input_schema"]


@pytest.mark.parametrize("model", ["oai-cut", "anth-cut"], ids=["openai-compatible-upstream", "anthropic-upstream"])
def test_upstream_cut_mid_stream_is_an_error_event(gw, model):
    text = []
    with (
        pytest.raises(anthropic.APIStatusError) as exc,
        client(gw).messages.stream(model=model, max_tokens=100, messages=MSG) as s,
    ):
        text.extend(s.text_stream)
    assert "".join(text) == "echo: What"
    assert exc.value.body["error"]["type"] == "api_error"
    ev = gw.events().row(0, named=True)
    assert (ev["http_status"], ev["error_type"], ev["endpoint"]) == (502, "upstream_stream_interrupted", "/v1/messages")


@pytest.mark.parametrize(
    ("model", "retry_after"),
    [("oai-429", "2"), ("anth-429", "3")],
    ids=["openai-compatible-upstream", "anthropic-upstream"],
)
def test_upstream_429_is_an_anthropic_rate_limit_error(gw, model, retry_after):
    with pytest.raises(anthropic.RateLimitError) as exc:
        client(gw).messages.create(model=model, max_tokens=100, messages=MSG)
    assert exc.value.response.headers["retry-after"] == retry_after
    assert exc.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": exc.value.body["error"]["message"]},
    }
    assert gw.events().row(0, named=True)["http_status"] == 429


@pytest.mark.parametrize(
    ("headers", "body", "status", "error_type"),
    [
        pytest.param(
            {"x-api-key": "nope"},
            {"model": "gpt-4o-mini", "max_tokens": 5, "messages": MSG},
            401,
            "authentication_error",
            id="bad-key",
        ),
        pytest.param({}, {"model": "gpt-4o-mini", "messages": MSG}, 400, "invalid_request_error", id="no-max-tokens"),
        pytest.param(
            {}, {"model": "nope", "max_tokens": 5, "messages": MSG}, 404, "not_found_error", id="unknown-model"
        ),
        pytest.param(
            {},
            {"model": "gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]},
            400,
            "invalid_request_error",
            id="bad-role",
        ),
    ],
)
def test_errors_use_anthropic_shape(gw, headers, body, status, error_type):
    resp = httpx.post(f"{gw.url}/v1/messages", json=body, headers={"x-api-key": gw.key, **headers})
    assert resp.status_code == status
    payload = resp.json()
    assert payload["type"] == "error" and payload["error"]["type"] == error_type and payload["error"]["message"]
