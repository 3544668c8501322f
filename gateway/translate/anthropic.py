"""OpenAI chat-completions ⇄ Anthropic Messages, both ways, as pure functions and small stream state machines.

Upstream direction (Apex calls Anthropic): ``to_anthropic_request``, ``from_anthropic_response``,
``AnthropicStreamReader`` (Anthropic SSE events → OpenAI chunks).
Inbound direction (an Anthropic client calls Apex): ``from_anthropic_request``, ``to_anthropic_message``,
``AnthropicStreamWriter`` (OpenAI chunks → Anthropic SSE events).
Anthropic's ``input_tokens`` excludes cache reads and writes; OpenAI's ``prompt_tokens`` includes them, so the
two are converted explicitly (``usage_from_anthropic``, ``usage_to_anthropic``).
"""

from __future__ import annotations

from gateway.translate.anthropic_common import (
    DEFAULT_MAX_TOKENS,
    error_type_for_status,
    usage_from_anthropic,
    usage_to_anthropic,
)
from gateway.translate.anthropic_inbound import AnthropicStreamWriter, from_anthropic_request, to_anthropic_message
from gateway.translate.anthropic_upstream import AnthropicStreamReader, from_anthropic_response, to_anthropic_request

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "AnthropicStreamReader",
    "AnthropicStreamWriter",
    "error_type_for_status",
    "from_anthropic_request",
    "from_anthropic_response",
    "to_anthropic_message",
    "to_anthropic_request",
    "usage_from_anthropic",
    "usage_to_anthropic",
]
