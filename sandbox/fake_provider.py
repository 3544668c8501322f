"""A local fake of the OpenAI chat-completions API, for tests and benchmarks (the network edge only).

It speaks the real wire format, streaming included, and misbehaves on request, chosen by model name:

    fake-429      429 with ``Retry-After: 2``
    fake-500      500 with an OpenAI error body
    fake-401      401 (the gateway's upstream key is wrong)
    fake-slow     waits ``slow_s`` before answering
    fake-cut      streams a few chunks, then drops the connection without ``[DONE]``
    fake-nousage  answers without a ``usage`` object (stream and not)
    anything else a normal answer: "echo: <last user message>" with exact usage

When the request offers tools and the last user message mentions "weather", the answer is a call of the first
tool with ``{"city": "Paris"}``. Azure OpenAI deployment URLs (``/openai/deployments/{name}/...``, which need
the ``api-key`` header and an ``api-version``) serve the same answers, with the deployment as the model.
``/v1/embeddings`` answers deterministic 8-dimensional vectors, one token per word (``fake-500``: a 500).

Every request body it receives is kept in ``FakeProvider.requests`` for assertions.
Run standalone: ``python -m sandbox.fake_provider --port 18001``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import orjson
from aiohttp import web

from sandbox.loopback import LoopbackServer

__all__ = ["FakeProvider"]


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def _last_user_text(body: dict[str, Any]) -> str:
    for msg in reversed(body.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user" and isinstance(msg.get("content"), str):
            return msg["content"]
    return ""


def _weather_call(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = body.get("tools") or []
    answered = (body.get("messages") or [{}])[-1].get("role") == "tool"  # the tool result came back: answer it
    if not tools or answered or "weather" not in _last_user_text(body).lower():
        return None
    name = (tools[0].get("function") or {}).get("name")
    return {"id": "call_fake_1", "type": "function", "function": {"name": name, "arguments": '{"city": "Paris"}'}}


class FakeProvider(LoopbackServer):
    def __init__(self, *, slow_s: float = 2.0, record: bool = True, azure_key: str = "azure-test-key") -> None:
        self.slow_s = slow_s
        self.record = record
        self.azure_key = azure_key
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.mode: str | None = None
        """Behave as if every request asked for this model (e.g. ``"fake-500"``) until reset to None."""
        self.next_modes: list[str] = []
        """One-shot behaviours, consumed one per request before ``mode`` applies (``"ok"`` = a normal answer)."""
        self.retry_after = "2"
        self.urls: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._azure)
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self._azure)
        app.router.add_get("/health", _health)
        return app

    async def _read(self, request: web.Request) -> dict[str, Any]:
        body = orjson.loads(await request.read())
        if self.record:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            self.urls.append(str(request.rel_url))
        return body

    async def _azure(self, request: web.Request) -> web.StreamResponse:
        body = await self._read(request)
        if request.headers.get("api-key") != self.azure_key:
            error = {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint."}
            return web.json_response({"error": error}, status=401)
        if not request.query.get("api-version"):
            error = {"code": "404", "message": "Resource not found"}  # what Azure answers without api-version
            return web.json_response({"error": error}, status=404)
        body["model"] = request.match_info["deployment"]
        if request.path.endswith("/embeddings"):
            return self._embed(body)
        return await self._answer(request, body)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        return self._embed(await self._read(request))

    def _embed(self, body: dict[str, Any]) -> web.StreamResponse:
        if body.get("model") == "fake-500":
            return web.json_response(
                {"error": {"message": "The server had an error", "type": "server_error"}}, status=500
            )
        inputs = body.get("input")
        items: list[Any] = [inputs] if isinstance(inputs, str) else list(inputs or ())
        data = [
            {"object": "embedding", "index": i, "embedding": [((len(str(item)) + k) % 7) / 7 for k in range(8)]}
            for i, item in enumerate(items)
        ]
        tokens = sum(len(str(item).split()) for item in items)
        payload = {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return web.json_response(payload)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, await self._read(request))

    async def _answer(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        model = self.next_modes.pop(0) if self.next_modes else (self.mode or body.get("model", ""))
        if model == "fake-429":
            return web.json_response(
                {
                    "error": {
                        "message": "Rate limit reached",
                        "type": "requests",
                        "code": "rate_limit_exceeded",
                    }
                },
                status=429,
                headers={"Retry-After": self.retry_after},
            )
        if model == "fake-500":
            return web.json_response(
                {"error": {"message": "The server had an error", "type": "server_error"}}, status=500
            )
        if model == "fake-401":
            return web.json_response(
                {
                    "error": {
                        "message": "Incorrect API key",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
                status=401,
            )
        if model == "fake-slow":
            await asyncio.sleep(self.slow_s)
        text = "echo: " + _last_user_text(body)
        tool_call = _weather_call(body)
        if tool_call is not None:
            text = "Let me check."
        words = text.split(" ")
        prompt_tokens = sum(len(str(m.get("content", "")).split()) + 4 for m in body.get("messages", []))
        completion_tokens = len(words) + (5 if tool_call else 0)
        finish_reason = "tool_calls" if tool_call else "stop"
        created = int(time.time())
        if not body.get("stream"):
            payload: dict[str, Any] = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": text,
                            **({"tool_calls": [tool_call]} if tool_call else {}),
                        },
                        "finish_reason": finish_reason,
                        "logprobs": None,
                    }
                ],
            }
            if model != "fake-nousage":
                payload["usage"] = _usage(prompt_tokens, completion_tokens)
            return web.Response(body=orjson.dumps(payload), content_type="application/json")
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        usage_field = {"usage": None} if include_usage else {}

        def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
            data = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
                **usage_field,
                **extra,
            }
            return b"data: " + orjson.dumps(data) + b"\n\n"

        await resp.write(chunk({"role": "assistant", "content": ""}))
        for i, word in enumerate(words):
            await resp.write(chunk({"content": ("" if i == 0 else " ") + word}))
            if model == "fake-cut" and i == 1:
                assert request.transport is not None
                request.transport.close()  # drop the connection mid-answer
                return resp
            if model == "fake-slow":
                await asyncio.sleep(0.01)
        if tool_call is not None:
            args = tool_call["function"]["arguments"]
            head = {**tool_call, "index": 0, "function": {"name": tool_call["function"]["name"], "arguments": ""}}
            await resp.write(chunk({"tool_calls": [head]}))
            for part in (args[: len(args) // 2], args[len(args) // 2 :]):
                await resp.write(chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}))
        await resp.write(chunk({}, finish_reason))
        if include_usage and model != "fake-nousage":
            await resp.write(chunk(None, usage=_usage(prompt_tokens, completion_tokens)))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    # -- running it in a background thread (tests) ----------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18001)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    web.run_app(
        FakeProvider(record=False).app(),
        host=args.host,
        port=args.port,
        access_log=None,
        print=lambda *_: None,
    )


async def _health(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


if __name__ == "__main__":
    main()
