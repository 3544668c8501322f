"""Property: whatever a chat request carries, admission reserves at least the prompt tokens a provider bills for it.

The fakes bill by the providers' published rules (tools by OpenAI's cookbook and Anthropic's tool-use prompt,
images by tiles or area at the size Pillow decodes); the reservation is computed as ``Limiter.admit`` does, both
the byte bound it tries first and the exact count it falls back to.
"""

from __future__ import annotations

import base64
import functools
import io
import wave
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from contracts.media_tokens import audio_tokens, image_size
from contracts.request_tokens import prompt_tokens_bound
from contracts.settings import ModelRoute
from contracts.tokens import count_message_tokens, message_tokens_upper_bound
from gateway.limits.limiter import _route_models
from gateway.providers.simulated import SimulatedProvider
from gateway.wire.anthropic.translate_upstream import to_anthropic_request
from gateway.wire.gemini.translate import to_gemini_request
from sandbox.fake_anthropic import anthropic_input_tokens
from sandbox.fake_gemini import gemini_prompt_tokens
from sandbox.fake_provider import openai_prompt_tokens

ROUTES = {
    "gpt-4o-mini": ModelRoute(name="gpt-4o-mini", provider="oai"),
    "gpt-4o": ModelRoute(name="gpt-4o", provider="oai"),
    "claude-haiku-4-5": ModelRoute(name="claude-haiku-4-5", provider="anth"),
    "gemini-2.5-flash": ModelRoute(name="gemini-2.5-flash", provider="gem"),
}


@functools.lru_cache(maxsize=64)
def image_data_url(width: int, height: int, fmt: str) -> str:
    buf = io.BytesIO()
    Image.new("L", (width, height), 128).save(buf, format=fmt)
    mime = {"PNG": "png", "JPEG": "jpeg", "GIF": "gif", "WEBP": "webp"}[fmt]
    return f"data:image/{mime};base64,{base64.b64encode(buf.getvalue()).decode()}"


words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)
sides = st.integers(1, 3000)


@st.composite
def image_parts(draw: st.DrawFn) -> dict[str, Any]:
    w, h = draw(sides), draw(sides)
    detail = draw(st.sampled_from(["low", "high", "auto", None]))
    if draw(st.booleans()):
        url = image_data_url(w, h, draw(st.sampled_from(["PNG", "JPEG", "GIF", "WEBP"])))
    else:
        url = f"https://images.example/{w}x{h}.png"  # the fake "fetches" that size; the gateway cannot know it
    image = {"url": url} if detail is None else {"url": url, "detail": detail}
    return {"type": "image_url", "image_url": image}


content = st.one_of(
    words,
    st.lists(st.one_of(words.map(lambda t: {"type": "text", "text": t}), image_parts()), min_size=1, max_size=3),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | words,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(words, inner, max_size=3),
    max_leaves=8,
)
properties = st.dictionaries(
    st.text("abcdefghij_", min_size=1, max_size=12),
    st.one_of(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["string", "integer", "boolean"])}, optional={"description": words}
        ),
        st.fixed_dictionaries({"type": st.just("string"), "enum": st.lists(words, min_size=1, max_size=4)}),
    ),
    max_size=4,
)
tools = st.lists(
    st.builds(
        lambda name, desc, props: {
            "type": "function",
            "function": {"name": name, "description": desc, "parameters": {"type": "object", "properties": props}},
        },
        st.text("abcdefghijklmnop_", min_size=1, max_size=20),
        st.text(max_size=400),
        properties,
    ),
    max_size=3,
)


@st.composite
def tool_call_turn(draw: st.DrawFn) -> list[dict[str, Any]]:
    name = draw(st.text("abcdefgh_", min_size=1, max_size=12))
    args = orjson.dumps(draw(st.dictionaries(words, json_values, max_size=3))).decode()
    call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": args}}
    return [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": draw(words)},
    ]


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(words)})
    for _ in range(draw(st.integers(1, 3))):
        messages.append({"role": "user", "content": draw(content)})
        if draw(st.booleans()):
            messages += draw(tool_call_turn())
    if messages[-1]["role"] != "user":
        messages.append({"role": "user", "content": draw(words)})
    body: dict[str, Any] = {"messages": messages, "max_tokens": 16}
    if offered := draw(tools):
        body["tools"] = offered
    if draw(st.booleans()):
        schema = {"type": "object", "properties": draw(properties)}
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    return body


def reservations(body: dict[str, Any], model: str) -> tuple[int, int]:
    """The byte bound admission reserves first, and the exact count it retries with when that is refused."""
    models = _route_models(ROUTES[model])
    return (
        prompt_tokens_bound(body["messages"], body, models),
        prompt_tokens_bound(body["messages"], body, models, exact_model=model),
    )


def billed(body: dict[str, Any], model: str) -> list[int]:
    """Prompt tokens the fake upstream of that kind, and the simulated provider, bill for the request."""
    if model.startswith("claude"):
        upstream = anthropic_input_tokens(to_anthropic_request(body, model, stream=False))
    elif model.startswith("gemini"):
        upstream = gemini_prompt_tokens(to_gemini_request(body))
    else:
        upstream = openai_prompt_tokens({**body, "model": model})
    _, usage, _ = SimulatedProvider("sim", 0.0)._answer(body, model)
    return [upstream, usage.prompt_tokens]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(body=requests(), model=st.sampled_from(sorted(ROUTES)))
def test_the_reservation_covers_what_any_provider_bills(body, model):
    bound, exact = reservations(body, model)
    for bill in billed(body, model):
        assert bound >= bill and exact >= bill, (bound, exact, bill)


def _image_message(url: str, **detail: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url, **detail}}]}]}


LONG_TOOL = {"type": "function", "function": {"name": "f", "description": "x " * 500}}


@pytest.mark.parametrize(
    ("extra", "model"),
    [
        pytest.param({"tools": [LONG_TOOL]}, "gpt-4o-mini", id="tools"),
        pytest.param(_image_message(image_data_url(2048, 1536, "PNG"), detail="high"), "gpt-4o-mini", id="oai-image"),
        pytest.param(_image_message(image_data_url(1500, 1500, "JPEG")), "claude-haiku-4-5", id="claude-image"),
    ],
)
def test_the_text_only_estimate_of_before_missed_what_is_billed(extra, model):
    """What the finding measured: text-only admission reserved less than the provider bills; the new bound does not."""
    body = {"messages": [{"role": "user", "content": "hi"}], **extra}
    [bill, _] = billed(body, model)
    assert message_tokens_upper_bound(body["messages"]) < bill <= reservations(body, model)[0]


def test_plain_text_is_reserved_exactly_as_before():
    """Plain text: the byte bound and the exact count are the old ones, to the token."""
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there", "name": "bo"}]
    body = {"messages": messages, "max_tokens": 5}
    assert prompt_tokens_bound(messages, body, ("gpt-4o-mini",)) == message_tokens_upper_bound(messages)
    exact = prompt_tokens_bound(messages, body, ("gpt-4o-mini",), exact_model="gpt-4o-mini")
    assert exact == count_message_tokens(messages, "gpt-4o-mini")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_an_image_size_is_read_from_its_header(fmt):
    assert image_size(image_data_url(1234, 567, fmt)) == (1234, 567)
    assert image_size("https://images.example/cat.png") is None  # a remote image is reserved at the worst case


def _wav(seconds: float, rate: int = 16_000) -> str:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(seconds * rate))
    return base64.b64encode(buf.getvalue()).decode()


def test_audio_is_reserved_by_duration_and_files_by_the_context_window():
    """A WAV by its header's duration (10 tokens/s on OpenAI, 32 on Gemini); any other clip by its bytes at the
    lowest MP3 bitrate; a file (a PDF's pages) at the model's whole context window."""
    assert audio_tokens(_wav(3.0), ("gpt-4o-audio-preview",)) == 30
    assert audio_tokens(_wav(3.0), ("gemini-2.5-flash",)) == 96
    mp3 = base64.b64encode(b"\xff\xfb" + b"\0" * 23_998).decode()  # 24 kB: at most 24 s at 8 kbit/s
    assert audio_tokens(mp3, ("gpt-4o-audio-preview",)) == 240
    body = {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_data": "data:..."}}]}]}
    assert prompt_tokens_bound(body["messages"], body, ("gpt-4o-mini",)) >= 128_000
