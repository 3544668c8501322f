"""A streamed chat call: the open upstream stream plus the bookkeeping that ends in the call's one event."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import orjson

from gateway.cache.exact import assemble_stream
from gateway.calls import CallRecord
from gateway.errors import ApexError
from gateway.providers.base import StreamChunk, Usage
from gateway.usage import delta_text, estimate_usage

if TYPE_CHECKING:
    from gateway.state import GatewayState

__all__ = ["StreamSession"]


class StreamSession:
    """An open upstream stream plus its bookkeeping. Iterate ``chunks()`` exactly once.

    Whatever ends the stream — its last chunk, an upstream failure (re-raised as ``ApexError`` for the renderer
    to send in-band), or the client going away (cancellation) — the call is recorded once, with the provider's
    usage if it arrived and a tokenizer estimate of what was streamed otherwise."""

    def __init__(
        self, state: GatewayState, call: CallRecord, first: StreamChunk, upstream: AsyncGenerator[StreamChunk, None]
    ) -> None:
        self.state = state
        self.call = call
        self._first: StreamChunk | None = first
        self._upstream = upstream
        self.usage: Usage | None = None
        self._text: list[str] = []
        self._collected: list[dict[str, Any]] | None = [] if call.store_answer else None

    def mark_sent(self) -> None:
        """The renderer sent bytes to the client: the first time, that is the time to first token."""
        if self.call.ttft_s is None:
            self.call.ttft_s = time.perf_counter() - self.call.t0

    async def chunks(self) -> AsyncGenerator[StreamChunk, None]:
        call = self.call
        t_first = time.perf_counter()
        try:
            chunk, self._first = self._first, None
            while chunk is not None:
                data = chunk.data
                if data.get("usage"):
                    self.usage = Usage.from_openai(data["usage"])
                for choice in data.get("choices") or ():
                    if isinstance(choice, dict) and choice.get("finish_reason"):
                        call.finish_reason = choice["finish_reason"]
                self._text.append(delta_text(data))
                if self._collected is not None:
                    self._collected.append(data)
                yield chunk
                chunk = await anext(self._upstream, None)
            # only a complete stream with provider usage is worth replaying later
            assembled = assemble_stream(self._collected) if self._collected is not None else None
            if assembled is not None and self.usage is not None:
                call.usage = self.usage
                self.state.levers.after(call, orjson.dumps(assembled))
        except ApexError as err:
            call.fail(err)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            call.http_status, call.error_type = 499, "client_disconnected"
            raise
        finally:
            call.upstream_s += time.perf_counter() - t_first
            with contextlib.suppress(Exception):
                await self._upstream.aclose()
            if self.usage is not None:
                call.usage, call.usage_source = self.usage, "provider"
            else:
                # what was streamed is billed by the provider even if the stream did not finish
                sent = call.upstream_messages or call.messages
                call.usage = estimate_usage(sent, call.requested_model or "", "".join(self._text))
                call.usage_source = "estimated"
            self.state.finish(call)
