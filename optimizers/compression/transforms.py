"""The transforms, each deterministic and meaning-preserving, each returning whether it changed anything.

They run in ``PIPELINE`` order on the working form (``segments.py``). None of them edits a fenced code block, a
non-text part, a tool call or an assistant prefill (a final assistant message), or removes anything from the final
question's paragraph; only ``minify_json`` touches tool results, and only losslessly. Every removal keeps the first
occurrence, so the removed text is still in the prompt.

Kept as one module (~400 lines): ``PIPELINE`` names this module's functions, resolved here at call time.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Sequence

from optimizers.compression.segments import MessageWork, Segment, Unit

__all__ = [
    "MIN_DUPLICATE_CHARS",
    "PIPELINE",
    "dedupe_blocks",
    "dedupe_messages",
    "minify_json",
    "normalise_whitespace",
    "trim_boilerplate",
]

# Names of this module's functions, run in this order; resolved at call time so a test can swap one out.
# Passages go before boilerplate: a document pasted in every turn is one omitted passage, not a document with holes.
PIPELINE = ("minify_json", "normalise_whitespace", "dedupe_messages", "dedupe_blocks", "trim_boilerplate")

# A repeated passage is replaced by a marker only when it is clearly longer than the marker (~25 tokens).
MIN_DUPLICATE_CHARS = 240
_CANDIDATES_PER_LINE = 16  # earlier occurrences tried per line: bounds the work on prompts full of identical lines
MARKER = '[repeated text omitted: identical to the earlier passage with "{preview} …"]'
_SYSTEM_ROLES = ("system", "developer")


def _editable(work: Sequence[MessageWork]) -> list[MessageWork]:
    return [mw for mw in work if mw.editable]


# --- JSON -------------------------------------------------------------------------------------------------------

_JSON_TOKENS = re.compile(r'("(?:[^"\\]|\\.)*")|[ \t\n\r]+')
_DECODER = json.JSONDecoder()


def _strip_json_whitespace(blob: str) -> str:
    """Drops whitespace between JSON tokens and copies string literals verbatim: numbers, escapes, key order and
    duplicate keys stay byte-identical, so the result is lossless by construction (and re-checked by parsing)."""
    return _JSON_TOKENS.sub(lambda m: m.group(1) or "", blob)


def _lossless(original: str, minified: str) -> bool:
    try:
        return json.loads(original, object_pairs_hook=list) == json.loads(minified, object_pairs_hook=list)
    except ValueError:
        return False


def _minify_segment(seg: Segment) -> bool:
    """Minifies each JSON object/array that starts a line and ends one (pretty-printed blobs, tool results)."""
    units = seg.units
    starts, offset = [], 0
    for u in units:
        starts.append(offset)
        offset += len(u.text) + 1
    text = "\n".join(u.text for u in units)
    out: list[Unit] = []
    changed, i = False, 0
    while i < len(units):
        unit = units[i]
        body = unit.text.lstrip(" \t")
        if unit.code or not body.startswith(("{", "[")):
            out.append(unit)
            i += 1
            continue
        begin = starts[i] + len(unit.text) - len(body)
        try:
            value, end = _DECODER.raw_decode(text, begin)
        except ValueError:
            value, end = None, begin
        last = bisect_right(starts, max(end - 1, begin)) - 1
        line_end = starts[last] + len(units[last].text)
        if not isinstance(value, dict | list) or not value or text[end:line_end].strip(" \t\r"):
            out.append(unit)
            i += 1
            continue
        blob = text[begin:end]
        minified = _strip_json_whitespace(blob)
        if minified == blob or not _lossless(blob, minified):
            out.append(unit)
            i += 1
            continue
        span = units[i : last + 1]
        if any(u.code for u in span):
            out.append(unit)
            i += 1
            continue
        indent = unit.text[: len(unit.text) - len(body)]
        out.append(Unit(indent + minified, protected=any(u.protected for u in span)))
        changed, i = True, last + 1
    if changed:
        seg.units = out
    return changed


def minify_json(work: Sequence[MessageWork]) -> bool:
    """Pretty-printed JSON costs a token per indent and newline; minified JSON parses to the same value."""
    changed = False
    for mw in work:
        if mw.dropped or mw.frozen:
            continue
        for seg in mw.segments:
            if "{" in seg.original or "[" in seg.original:
                changed = _minify_segment(seg) or changed
    return changed


# --- whitespace -------------------------------------------------------------------------------------------------

# After a word or sentence punctuation only: "+    return" (a diff line) or "#   x" keeps its inner indentation.
_INTERIOR_RUN = re.compile(r"(?<=[\w.,;:!?)]) {2,}(?=\S)")
_DIFF = re.compile(r"^(?:@@ -\d|diff --git |\+\+\+ |--- a/)", re.MULTILINE)
_ALIGNMENT_RUN = re.compile(r"(?<=[^\s.!?:;,]) {2,}(?=\S)|(?<=\S)\t")  # column alignment, not sentence spacing
_STRUCTURED_CHARS = frozenset('"`{}[]|<>=\t')  # code, markup, tables, quoted literals: inner spacing may matter


def _collapsible(line: str) -> bool:
    """Inner runs of spaces are collapsed only in prose: not in indented lines (code, nested lists) or lines that
    look like code, markup, tables or quoted literals."""
    return bool(line) and line[0] not in " \t" and not _STRUCTURED_CHARS.intersection(line)


def _normalise_paragraph(lines: list[Unit]) -> list[Unit]:
    aligned = sum(1 for u in lines if _ALIGNMENT_RUN.search(u.text)) >= 2  # space-aligned columns: leave inside
    out = []
    for u in lines:
        text = u.text.rstrip(" \t\r")
        if not aligned and "  " in text and _collapsible(text):
            text = _INTERIOR_RUN.sub(" ", text)
        out.append(u._replace(text=text) if text != u.text else u)
    return out


def _normalise_units(units: list[Unit]) -> list[Unit]:
    out: list[Unit] = []
    paragraph: list[Unit] = []
    for u in [*units, Unit("", code=True)]:  # the sentinel flushes the last paragraph
        if not u.code and u.text.strip(" \t\r"):
            paragraph.append(u)
            continue
        out.extend(_normalise_paragraph(paragraph))
        paragraph = []
        if u.code:
            out.append(u)
        elif out and (out[-1].code or out[-1].text):  # one blank line between paragraphs, none at the start
            out.append(u._replace(text=""))
    out.pop()  # the sentinel
    while out and not out[-1].code and not out[-1].text:
        out.pop()
    return out


def normalise_whitespace(work: Sequence[MessageWork]) -> bool:
    """Trailing spaces, runs of blank lines and doubled spaces in prose cost tokens and carry no meaning there."""
    changed = False
    for mw in _editable(work):
        for seg in mw.segments:
            if _DIFF.search(seg.original):  # an unfenced patch: blank and trailing-space lines are part of it
                continue
            new = _normalise_units(seg.units)
            if new != seg.units:
                seg.units, changed = new, True
    return changed


# --- repeated messages ------------------------------------------------------------------------------------------


def dedupe_messages(work: Sequence[MessageWork]) -> bool:
    """Drops a system/developer message identical to an earlier one (boilerplate re-sent every turn) and one of two
    identical plain messages in a row (a double send; the later copy stays, it may hold the final question). Other
    repeats are conversation and stay."""
    seen_system: set[tuple[str, str, tuple[str, ...]]] = set()
    previous: MessageWork | None = None
    changed = False
    for mw in work:
        if mw.dropped:
            continue
        key = mw.key()
        if mw.is_plain and mw.segments:
            if mw.role in _SYSTEM_ROLES and key in seen_system:
                mw.dropped = changed = True
                continue
            if previous is not None and previous.is_plain and key == previous.key():
                previous.dropped = changed = True
        if mw.role in _SYSTEM_ROLES:
            seen_system.add(key)
        previous = mw
    return changed


# --- repeated passages ------------------------------------------------------------------------------------------


def _unit_key(u: Unit) -> str:
    return u.text if u.code else " ".join(u.text.split())


def _distinctive(run: list[str], counts: Counter[str]) -> int:
    """Offset of the run's line that is rarest in the whole prompt (first among equals), ignoring short ones: a
    header shared by many passages, or a bare "Document:", would not say which passage is meant."""
    candidates = [(counts[key], j) for j, key in enumerate(run) if len(key) >= 20]
    return min(candidates)[1] if candidates else 0


def _marker(unit: Unit) -> Unit:
    words = unit.text.replace('"', "'").split()
    return Unit(MARKER.format(preview=" ".join(words[:8])), pinned=True)


class _PassageIndex:
    """The units kept so far, in order, with ``None`` between segments so that a match never spans two of them.

    Matching is greedy and bounded: at most ``_CANDIDATES_PER_LINE`` earlier occurrences per line, only those that
    could still yield ``MIN_DUPLICATE_CHARS``, and a total step budget linear in the prompt's size, so a pathological
    prompt (thousands of identical short lines) costs milliseconds, not seconds."""

    def __init__(self, budget: int) -> None:
        self.seq: list[str | None] = []
        self.origin: list[tuple[list[Unit], int] | None] = []  # where each kept unit sits in its output list
        self.where: dict[str, list[int]] = defaultdict(list)
        self.budget = budget

    def add(self, key: str | None, origin: tuple[list[Unit], int] | None = None) -> None:
        if key:
            self.where[key].append(len(self.seq))
        self.seq.append(key)
        self.origin.append(origin)

    def longest_match(self, keys: list[str], cum: list[int], stop: int, i: int) -> tuple[int, int]:
        """(length, earlier position) of the longest run of units from ``i`` (before ``stop``) that occurs, contiguous,
        earlier in the kept text and is at least ``MIN_DUPLICATE_CHARS`` long; length 0 if there is none."""
        best, where = 0, -1
        for p in self.where.get(keys[i], [])[-_CANDIDATES_PER_LINE:]:
            most = min(stop - i, len(self.seq) - p)
            if cum[i + most] - cum[i] < MIN_DUPLICATE_CHARS or most <= best or self.budget <= 0:
                continue
            n = 1
            while n < most and self.seq[p + n] == keys[i + n]:
                n += 1
            self.budget -= n
            if n > best:
                best, where = n, p
        while best and not keys[i + best - 1]:  # end on text, not on a blank line
            best -= 1
        return (best, where) if cum[i + best] - cum[i] >= MIN_DUPLICATE_CHARS else (0, -1)


def dedupe_blocks(work: Sequence[MessageWork]) -> bool:
    """Replaces a passage (a run of whole lines and code blocks, >= ``MIN_DUPLICATE_CHARS``) that already appeared
    earlier, e.g. the same document pasted in every turn, with a short marker quoting the start of its most distinctive
    line. The first copy is kept, so the model still has the text; matching runs against kept text only. The marker
    and the quoted line of the first copy are pinned: later transforms leave them, so a marker points at text that
    is there."""
    editable = _editable(work)
    index = _PassageIndex(budget=10_000 + 32 * sum(len(seg.units) for mw in editable for seg in mw.segments))
    pins: list[tuple[list[Unit], int]] = []
    counts = Counter(_unit_key(u) for mw in editable for seg in mw.segments for u in seg.units)
    changed = False
    for mw in editable:
        for seg in mw.segments:
            units, keys = seg.units, [_unit_key(u) for u in seg.units]
            stop = next((j for j, u in enumerate(units) if u.protected), len(units))  # protection is a suffix
            cum = [0]
            for k in keys:
                cum.append(cum[-1] + len(k))
            out: list[Unit] = []
            i = 0
            while i < len(units):
                n, p = index.longest_match(keys, cum, stop, i) if i < stop and keys[i] else (0, -1)
                if n:
                    quoted = _distinctive(keys[i : i + n], counts)
                    if (origin := index.origin[p + quoted]) is not None:
                        pins.append(origin)
                    out.append(_marker(units[i + quoted]))
                    index.add(None)
                    i += n
                else:
                    index.add(keys[i], (out, len(out)))
                    out.append(units[i])
                    i += 1
            index.add(None)
            changed = changed or len(out) != len(units)
            seg.units = out
    for out, j in pins:
        out[j] = out[j]._replace(pinned=True)
    return changed


# --- repeated boilerplate ---------------------------------------------------------------------------------------

# A single capital ("A", "(B)") or a bracketed small letter ("(c)", "d)"): an answer option, so not boilerplate.
_LETTER_OPTION = re.compile(r"(?<![\w'’])(?:\(?[A-HJ-Z]\)?|\(?[a-h]\))(?![\w'’])")
_LEAD_IN = re.compile(r"^(?P<label>[A-Z][A-Za-z ]{0,24}:[ \t]+)(?P<lead>[^.!?\n]+[.!])[ \t]+(?P<rest>\S.*)$")
_LABEL = re.compile(r"^([A-Z][A-Za-z ]{0,24}:)[ \t]+\S")
_MIN_REPEATS = 3


def _is_boilerplate(text: str) -> bool:
    """Instruction-like text: several words, no digit, no single-letter option (those carry an example's answer), and
    not a question (a repeated question is a user re-asking)."""
    stripped = text.strip()
    return (
        len(stripped) >= 20
        and len(stripped.split()) >= 5
        and not stripped.endswith("?")
        and not any(c.isdigit() for c in stripped)
        and not _LETTER_OPTION.search(stripped)
    )


def _paragraph_heads(seg: Segment) -> list[int]:
    units = seg.units
    return [
        i
        for i, u in enumerate(units)
        if not u.code and u.text.strip() and (i == 0 or (not units[i - 1].code and not units[i - 1].text.strip()))
    ]


def _drop_units(seg: Segment, drop: set[int]) -> bool:
    """Removes the units (and the blank line a removed one-line paragraph leaves); never empties a segment."""
    units = seg.units
    for i in list(drop):
        single = i + 1 < len(units) and not units[i + 1].code and not units[i + 1].text.strip()
        if single and (i == 0 or not units[i - 1].text.strip()):
            drop.add(i + 1)
    kept = [u for i, u in enumerate(units) if i not in drop]
    if not any(u.code or u.text.strip() for u in kept):
        return False
    seg.units = kept
    return True


def _trim_headers(segs: list[Segment]) -> bool:
    """An instruction or header line that opens a paragraph in 3+ places (e.g. MMLU's "The following are multiple
    choice questions (with answers) about X." per shot): keep the first occurrence, drop the rest."""
    heads = [(seg, i, _unit_key(seg.units[i])) for seg in segs for i in _paragraph_heads(seg)]
    counts: dict[str, int] = defaultdict(int)
    for _, _, key in heads:
        counts[key] += 1
    repeated = {k for k, n in counts.items() if n >= _MIN_REPEATS and _is_boilerplate(k)}
    first_seen: set[str] = set()
    drops: dict[int, tuple[Segment, set[int]]] = {}
    for seg, i, key in heads:
        if key not in repeated:
            continue
        if key not in first_seen:
            first_seen.add(key)
        elif not seg.units[i].protected and not seg.units[i].pinned:
            drops.setdefault(id(seg), (seg, set()))[1].add(i)
    changed = False
    for seg, drop in drops.values():
        changed = _drop_units(seg, drop) or changed
    return changed


def _trim_lead_ins(segs: list[Segment]) -> bool:
    """A sentence that opens every labelled line of one kind (e.g. "Answer: Let's think step by step. ..." in each
    shot): keep it once. Only when every line with that label opens with it, so it is template, not content."""
    labelled: dict[str, list[tuple[Segment, int]]] = defaultdict(list)
    for seg in segs:
        for i, u in enumerate(seg.units):
            if not u.code and (m := _LABEL.match(u.text)):
                labelled[m[1]].append((seg, i))
    changed = False
    for lines in labelled.values():
        hits = [(seg, i, m) for seg, i in lines if (m := _LEAD_IN.match(seg.units[i].text))]
        if len(hits) < _MIN_REPEATS:
            continue
        lead = " ".join(hits[0][2]["lead"].split())
        if not _is_boilerplate(lead) or not all(
            " ".join(seg.units[i].text.split(":", 1)[1].split()).startswith(lead) for seg, i in lines
        ):
            continue
        for seg, i, m in hits[1:]:
            if not seg.units[i].protected and not seg.units[i].pinned:
                seg.units[i] = seg.units[i]._replace(text=m["label"] + m["rest"])
                changed = True
    return changed


def trim_boilerplate(work: Sequence[MessageWork]) -> bool:
    """Repeated instructions in the user's and system's text (few-shot templates); the assistant's text is left."""
    segs = [seg for mw in _editable(work) if mw.role != "assistant" for seg in mw.segments]
    headers = _trim_headers(segs)
    lead_ins = _trim_lead_ins(segs)
    return headers or lead_ins
