"""The working form of a chat request that the transforms edit: messages split into text segments, segments into units.

A unit is one line of prose or one whole fenced code block (fence lines included). Code blocks are atomic so that no
transform can change a byte inside them; joining a segment's units with ``"\\n"`` gives back its text exactly, so an
untouched segment renders to the very same string. Units carry a ``protected`` flag: the last paragraph of the last
user message (where the final question lives) is never removed, only whitespace-normalised; ``pinned`` ones (an
omission marker and the line it quotes) are never removed either.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

__all__ = ["MessageWork", "Segment", "Unit", "build_work", "fenced_blocks", "message_text", "render", "split_units"]

_FENCE_OPEN = re.compile(r"^[ \t]*(`{3,}|~{3,})")


class Unit(NamedTuple):
    text: str
    code: bool = False
    protected: bool = False  # in the final question's paragraph: never removed
    pinned: bool = False  # an omission marker, or the first line of the passage it points at: never removed


@dataclass
class Segment:
    """One string of text: a message's ``content`` when it is a str, else one ``{"type": "text"}`` part."""

    part: int | None  # index in the content list; None when the content is a plain string
    original: str
    units: list[Unit]

    def text(self) -> str:
        return "\n".join(u.text for u in self.units)

    def changed(self) -> bool:
        return self.text() != self.original


@dataclass
class MessageWork:
    index: int
    message: Mapping[str, Any]
    segments: list[Segment] = field(default_factory=list)
    dropped: bool = False
    frozen: bool = False  # an assistant prefill the model continues: its exact text, trailing space included, stays

    @property
    def role(self) -> str:
        return str(self.message.get("role", ""))

    @property
    def is_tool(self) -> bool:
        """Tool results are data: only lossless JSON minification may touch them."""
        return self.role in ("tool", "function")

    @property
    def editable(self) -> bool:
        return not self.dropped and not self.frozen and not self.is_tool

    @property
    def is_plain(self) -> bool:
        """No tool calls, no tool pairing and no non-text parts: the only messages that may be dropped."""
        if self.is_tool or self.frozen or self.message.get("tool_calls") or self.message.get("function_call"):
            return False
        content = self.message.get("content")
        if isinstance(content, list):
            return all(isinstance(p, Mapping) and p.get("type") == "text" for p in content)
        return isinstance(content, str)

    def key(self) -> tuple[str, str, tuple[str, ...]]:
        """Identity after normalisation, used to find repeated messages."""
        return (self.role, str(self.message.get("name") or ""), tuple(s.text() for s in self.segments))


def _closes(line: str, char: str, length: int) -> bool:
    s = line.strip()
    return len(s) >= length and s == char * len(s)


def split_units(text: str) -> list[Unit]:
    """Lines, except that a fenced block (``` or ~~~, any indentation) is one unit; an unclosed fence runs to the
    end, which errs on the side of leaving text untouched."""
    lines = text.split("\n")
    if "```" not in text and "~~~" not in text:
        return [Unit(line) for line in lines]
    units: list[Unit] = []
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m:
            units.append(Unit(lines[i]))
            i += 1
            continue
        char, length = m.group(1)[0], len(m.group(1))
        j = i + 1
        while j < len(lines) and not _closes(lines[j], char, length):
            j += 1
        end = min(j, len(lines) - 1)
        units.append(Unit("\n".join(lines[i : end + 1]), code=True))
        i = end + 1
    return units


def fenced_blocks(text: str) -> list[str]:
    return [u.text for u in split_units(text) if u.code]


def message_text(message: Mapping[str, Any]) -> str:
    """All text of a message (string content or text parts), newline-joined, as the tokenizer sees it."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p["text"]
            for p in content
            if isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )
    return ""


def _segments(message: Mapping[str, Any]) -> list[Segment]:
    content = message.get("content")
    if isinstance(content, str):
        return [Segment(None, content, split_units(content))]
    segments = []
    if isinstance(content, list):
        for i, part in enumerate(content):
            if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str):
                segments.append(Segment(i, part["text"], split_units(part["text"])))
    return segments


def _protect_final_paragraph(mw: MessageWork) -> None:
    """Protect from the start of the last paragraph that holds prose (not only code) to the end of the message; all
    of it if it has no prose (a bare code block is the question then)."""
    for s_idx in range(len(mw.segments) - 1, -1, -1):
        units = mw.segments[s_idx].units
        last = next((i for i in range(len(units) - 1, -1, -1) if not units[i].code and units[i].text.strip()), None)
        if last is None:
            continue
        start = last
        while start > 0 and (units[start - 1].code or units[start - 1].text.strip()):
            start -= 1
        for seg_i, seg in enumerate(mw.segments[s_idx:]):
            first = start if seg_i == 0 else 0
            seg.units = seg.units[:first] + [u._replace(protected=True) for u in seg.units[first:]]
        return
    for seg in mw.segments:
        seg.units = [u._replace(protected=True) for u in seg.units]


def build_work(messages: Sequence[Mapping[str, Any]]) -> list[MessageWork]:
    work = [MessageWork(i, m, _segments(m)) for i, m in enumerate(messages) if isinstance(m, Mapping)]
    if work and work[-1].role == "assistant":
        work[-1].frozen = True
    last_user = next((mw for mw in reversed(work) if mw.role == "user"), None)
    if last_user is not None:
        _protect_final_paragraph(last_user)
    return work


def _rendered(mw: MessageWork) -> Mapping[str, Any]:
    if not any(s.changed() for s in mw.segments):
        return mw.message
    content = mw.message.get("content")
    if isinstance(content, str):
        return {**mw.message, "content": mw.segments[0].text()}
    parts: list[Any] = list(content) if isinstance(content, list) else []
    for seg in mw.segments:
        if seg.changed() and seg.part is not None:
            parts[seg.part] = {**parts[seg.part], "text": seg.text()}
    return {**mw.message, "content": parts}


def render(work: Sequence[MessageWork]) -> list[dict[str, Any]]:
    """A new list; unchanged messages are the caller's own (unmutated) dicts, changed ones are shallow copies."""
    return [cast(dict[str, Any], _rendered(mw)) for mw in work if not mw.dropped]
