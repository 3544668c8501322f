"""The quality guard: what must survive compression, checked on the actual output before it is sent.

Items are taken from the original messages and looked up in the compressed ones. Removals keep a first copy, so a
check asks whether an item still occurs anywhere in the prompt, not how often:

- hard items, where one loss can change the answer: every number, every fenced code block (byte-exact), every
  URL, the final question (the last ``?`` sentence of the last user message's last paragraph, and that paragraph's
  last sentence, both still in the last user message), and the structure (tool calls, tool results' ids, non-text
  parts, in order). A lost hard item always means fallback, whatever ``min_quality`` says;
- soft items: named entities, by a heuristic (capitalised multi-word names, capitalised words inside a sentence,
  acronyms). Its false positives are harmless (more to check), so they count in the score and the default
  ``min_quality`` of 1.0 requires all of them too; a caller may tolerate some with a lower threshold.

``quality_score`` = retained items / checked items (1.0 when there is nothing to check).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optimizers.compression.segments import fenced_blocks, message_text, split_units

__all__ = ["GuardReport", "evaluate", "final_question"]

_NUMBER = re.compile(r"\d+(?:\.\d+)*")
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"'`)\]]+")
_ENTITY = re.compile(
    r"\b[A-Z][a-z]+(?:[ \t]+[A-Z][a-z]+)+\b"  # multi-word names: "New York", "Karl Marx"
    r"|(?<=[a-z,;] )[A-Z][a-z]{2,}\b"  # a capitalised word inside a sentence: "... feeds Wendi's"
    r"|\b[A-Z]{2,}\b"  # acronyms: "NASA", "GDP"
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class GuardReport:
    checked: int
    retained: int
    hard_loss: str | None  # the first lost hard item, e.g. "number lost: 42"
    soft_loss: str | None  # the first lost soft item, e.g. "entity lost: Karl Marx"

    @property
    def score(self) -> float:
        return self.retained / self.checked if self.checked else 1.0

    def fallback_reason(self, min_quality: float) -> str | None:
        if self.hard_loss:
            return self.hard_loss
        if self.score < min_quality:
            return f"quality {self.score:.3f} < {min_quality:g}: {self.soft_loss}"
        return None


def _squash(text: str) -> str:
    return " ".join(text.split())


def _prose(text: str) -> str:
    return "\n".join(u.text for u in split_units(text) if not u.code)


def _last_user_text(messages: Sequence[Mapping[str, Any]]) -> str | None:
    return next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), None)


def final_question(messages: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The last ``?`` sentence of the last user message's last prose paragraph, and that paragraph's last sentence
    (e.g. GSM8K's "How many ... ?" and the "Answer: Let's think step by step." cue after it). A line break ends a
    sentence too, so a question under a pasted blob is not merged with it."""
    text = _last_user_text(messages)
    if text is None:
        return ()
    paragraphs = [p for p in re.split(r"\n[ \t\r]*\n", _prose(text)) if p.strip()]
    if not paragraphs:
        return ()
    lines = [_squash(line) for line in paragraphs[-1].split("\n") if line.strip()]
    sentences = [s for line in lines for s in _SENTENCE_END.split(line) if s]
    questions = [s for s in sentences if s.endswith("?")]
    return tuple(dict.fromkeys([*questions[-1:], sentences[-1]]))


def _structure(messages: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """What no transform may change: tool calls, tool pairing and non-text parts, in order."""
    out = []
    for m in messages:
        content = m.get("content")
        others = (
            [p for p in content if not (isinstance(p, Mapping) and p.get("type") == "text")]
            if isinstance(content, list)
            else []
        )
        if m.get("tool_calls") or m.get("function_call") or m.get("tool_call_id") or others:
            out.append((m.get("role"), m.get("tool_call_id"), m.get("tool_calls"), m.get("function_call"), others))
    return out


def _items(original: str, prose: str) -> Iterator[tuple[str, str, bool]]:
    """(kind, item, hard) for every distinct item, in order of first appearance."""
    for kind, found, hard in (
        ("number", _NUMBER.findall(original), True),
        ("code block", fenced_blocks(original), True),
        ("url", [u.rstrip(".,;:!?") for u in _URL.findall(original)], True),
        ("entity", [_squash(e) for e in _ENTITY.findall(prose)], False),
    ):
        for item in dict.fromkeys(found):
            yield kind, item, hard


def _short(item: str, limit: int = 60) -> str:
    item = item.replace("\n", "\\n")
    return item if len(item) <= limit else item[: limit - 1] + "…"


def evaluate(original: Sequence[Mapping[str, Any]], compressed: Sequence[Mapping[str, Any]]) -> GuardReport:
    before = "\n".join(message_text(m) for m in original)
    after = "\n".join(message_text(m) for m in compressed)
    after_numbers, after_squashed = set(_NUMBER.findall(after)), _squash(after)
    checked = retained = 0
    hard_loss = soft_loss = None
    for kind, item, hard in _items(before, _prose(before)):
        if kind == "number":
            kept = item in after_numbers
        elif kind == "entity":
            kept = item in after_squashed
        else:
            kept = item in after
        checked += 1
        retained += kept
        if not kept and hard and hard_loss is None:
            hard_loss = f"{kind} lost: {_short(item)}"
        elif not kept and not hard and soft_loss is None:
            soft_loss = f"{kind} lost: {_short(item)}"
    last_after = _squash(_last_user_text(compressed) or "")
    for sentence in final_question(original):
        checked += 1
        if sentence in last_after:
            retained += 1
        elif hard_loss is None:
            hard_loss = f"final question lost: {_short(sentence)}"
    if hard_loss is None and _structure(original) != _structure(compressed):
        hard_loss = "structure changed: tool calls, tool results or non-text parts"
    return GuardReport(checked, retained, hard_loss, soft_loss)
