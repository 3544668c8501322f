"""Deterministic prompt compression with a quality guard, on the gateway's request path.

``compress_messages`` runs a fixed pipeline of meaning-preserving transforms (``transforms.PIPELINE``: lossless JSON
minification, whitespace normalisation outside code, dropping re-sent system messages and double sends, replacing a
passage pasted again with a marker that points at its first copy, and keeping repeated few-shot instructions once),
then checks the result with the guard (``guard.py``): if any number, fenced code block, URL, the final question or
the tool-call structure is lost, or the share of retained items is below ``min_quality``, the ORIGINAL messages are
sent and the reason is reported. No model, no randomness: the same input always gives the same output, so the
savings can be replayed and audited from the recorded ``version``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contracts.tokens import count_message_tokens
from optimizers.compression import guard, transforms
from optimizers.compression.segments import build_work, render

__all__ = ["VERSION", "CompressionResult", "compress_messages"]

VERSION = "compression-v1"


@dataclass(frozen=True)
class CompressionResult:
    messages: list[dict]  # what to send: the compressed messages, or the ORIGINAL list object on fallback/unchanged
    status: str  # 'compressed' | 'unchanged' | 'fallback'
    tokens_before: int
    tokens_after: int  # == tokens_before unless status == 'compressed'
    tokens_saved: int  # tokens_before - tokens_after (0 unless compressed)
    transforms: tuple[str, ...]  # names of transforms that changed something
    quality_score: float  # share of guarded items retained (1.0 if nothing to check)
    fallback_reason: str | None  # e.g. "number lost: 42"; None unless fallback
    version: str  # e.g. "compression-v1", recorded on events


def _keep(messages: list[dict], tokens: int, status: str = "unchanged", **extra: Any) -> CompressionResult:
    fields: dict[str, Any] = {"transforms": (), "quality_score": 1.0, "fallback_reason": None, **extra}
    return CompressionResult(messages, status, tokens, tokens, 0, version=VERSION, **fields)


def compress_messages(messages: list[dict], model: str | None = None, *, min_quality: float = 1.0) -> CompressionResult:
    """Compress a chat request; never mutates ``messages``, never raises on odd input (it is sent as is)."""
    tokens_before = count_message_tokens(messages, model)
    if not messages or not all(isinstance(m, Mapping) for m in messages):
        return _keep(messages, tokens_before)
    applied: list[str] = []
    try:
        work = build_work(messages)
        for name in transforms.PIPELINE:
            if getattr(transforms, name)(work):
                applied.append(name)
        if not applied:
            return _keep(messages, tokens_before)
        compressed = render(work)
        report = guard.evaluate(messages, compressed)
    except Exception as exc:  # a bug here must cost the savings, not the request
        return _keep(messages, tokens_before, "fallback", transforms=tuple(applied), fallback_reason=f"error: {exc!r}")
    reason = report.fallback_reason(min_quality)
    if reason is not None:
        return _keep(
            messages,
            tokens_before,
            "fallback",
            transforms=tuple(applied),
            quality_score=report.score,
            fallback_reason=reason,
        )
    tokens_after = count_message_tokens(compressed, model)
    if tokens_after >= tokens_before:
        return _keep(messages, tokens_before, quality_score=report.score)
    return CompressionResult(
        messages=compressed,
        status="compressed",
        tokens_before=tokens_before,
        tokens_after=tokens_after,
        tokens_saved=tokens_before - tokens_after,
        transforms=tuple(applied),
        quality_score=report.score,
        fallback_reason=None,
        version=VERSION,
    )
