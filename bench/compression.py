"""Prompt-compression bench: tokens saved, guard fallbacks and retention, and latency of ``compress_messages``.

Builds prompt families from a CSV with a ``prompt`` column (default: ``../shared/data/routing/routellm_dev.csv``,
whose ``benchmark`` and ``subject`` columns pick GSM8K and MMLU rows; without them every row serves every family):

- ``gsm8k-8shot``: one user message, 8 shots of ``Question: ...\\nAnswer: Let's think step by step. ...`` and the
  target question ending with the same cue;
- ``gsm8k-8shot-instr``: the same with a per-shot instruction line (a prompt built by rendering one template per shot);
- ``mmlu-5shot``: one user message, 5 same-subject shots, each under the per-shot header "The following are multiple
  choice questions (with answers) about X.";
- ``mmlu-5shot-chat``: the same as chat turns (user: header + question, assistant: the letter);
- ``rag-chat``: a 4-turn conversation that re-pastes the same document (and the same instruction) every turn;
- ``agent-tools``: a tool-using conversation whose tool results are pretty-printed JSON;
- ``plain-chat``: ~2 KB ordinary conversations with next to nothing to remove (the cost on the request path).

The CSV has no gold answers or worked solutions, so shots carry stand-ins, generated deterministically: an MMLU
shot's answer is a letter, a GSM8K shot's worked answer is the text of another GSM8K problem (about the length of a
real solution) followed by "The answer is N.". They are payload: the compressor must keep them.

Latency is the calling thread's CPU time per ``compress_messages`` call (token counting included), so that other
processes on a shared machine do not inflate it; the elapsed p99 is reported beside it. Every compressed output is
re-checked by the guard (``guard_retention_pct``, must be 100) and by an independent check here (digit runs, fenced
blocks, the last line of the last user message). The last stdout line is one JSON object with the headline figures.

    .venv/bin/python bench/compression.py [--prompts FILE] [--per-family N] [--seed S]
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _shared_data import SHARED_DATA  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402

from optimizers.compression import VERSION, compress_messages  # noqa: E402
from optimizers.compression.guard import evaluate  # noqa: E402
from optimizers.compression.segments import fenced_blocks, message_text  # noqa: E402

DEFAULT_PROMPTS = SHARED_DATA / "routing" / "routellm_dev.csv"
FEWSHOT = ("gsm8k-8shot", "gsm8k-8shot-instr", "mmlu-5shot", "mmlu-5shot-chat")
TRANSCRIPTS = ("rag-chat", "agent-tools")
MODEL = "gpt-4o-mini"
GSM_CUE = "Let's think step by step."
GSM_INSTRUCTION = (
    "Solve the following grade-school math word problem. Reason step by step and end with the final answer."
)
RAG_INSTRUCTION = "Answer the question using only the document below. Say so if the document does not contain it."
Messages = list[dict[str, Any]]


@dataclass
class Row:
    prompt: str
    subject: str


@dataclass
class Pools:
    gsm8k: list[Row]
    mmlu: list[Row]
    every: list[Row]


@dataclass
class Tally:
    prompts: int = 0
    chars: int = 0
    before: int = 0
    after: int = 0
    compressed: int = 0
    fallbacks: int = 0
    checked: int = 0
    retained: int = 0
    independent_failures: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # CPU time of the calling thread
    wall_ms: list[float] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def saved_pct(self) -> float:
        return 100.0 * (self.before - self.after) / self.before if self.before else 0.0


def load_pools(path: Path) -> Pools:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if "prompt" not in (reader.fieldnames or []):
            raise SystemExit(f"{path}: no 'prompt' column")
        raw = [r for r in reader if (r.get("prompt") or "").strip()]
    rows = [(r.get("benchmark") or "", Row(r["prompt"].strip(), r.get("subject") or "general knowledge")) for r in raw]
    every = [row for _, row in rows]
    has_benchmark = any(b for b, _ in rows)
    gsm = [row for b, row in rows if b == "gsm8k"] if has_benchmark else every
    mmlu = [row for b, row in rows if b == "mmlu"] if has_benchmark else every
    return Pools(gsm or every, mmlu or every, every)


def _sample(rows: list[Row], n: int, rng: random.Random) -> list[int]:
    return sorted(rng.sample(range(len(rows)), min(n, len(rows))))


def _others(n_rows: int, target: int, k: int, rng: random.Random) -> list[int]:
    picks = rng.sample(range(n_rows - 1), k)
    return [p + (p >= target) for p in picks]


def _standin_solution(pool: list[Row], i: int, rng: random.Random) -> str:
    text = " ".join(pool[_others(len(pool), i, 1, rng)[0]].prompt.split("\n"))
    return f"{text} The answer is {rng.randint(2, 999)}."


def gsm8k_prompts(pool: list[Row], n: int, rng: random.Random, instructed: bool) -> Iterator[Messages]:
    head = f"{GSM_INSTRUCTION}\n" if instructed else ""
    for t in _sample(pool, n, rng):
        shots = [
            f"{head}Question: {pool[i].prompt}\nAnswer: {GSM_CUE} {_standin_solution(pool, i, rng)}"
            for i in _others(len(pool), t, 8, rng)
        ]
        final = f"{head}Question: {pool[t].prompt}\nAnswer: {GSM_CUE}"
        yield [{"role": "user", "content": "\n\n".join([*shots, final])}]


def _mmlu_header(subject: str) -> str:
    return f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}."


def _same_subject(pool: list[Row], t: int, k: int, rng: random.Random) -> list[int]:
    same = [i for i, r in enumerate(pool) if r.subject == pool[t].subject and i != t]
    return rng.sample(same, k) if len(same) >= k else _others(len(pool), t, k, rng)


def mmlu_prompts(pool: list[Row], n: int, rng: random.Random, chat: bool) -> Iterator[Messages]:
    for t in _sample(pool, n, rng):
        shots = [(pool[i], rng.choice("ABCD")) for i in _same_subject(pool, t, 5, rng)]
        if not chat:
            blocks = [f"{_mmlu_header(r.subject)}\n\n{r.prompt} {letter}" for r, letter in shots]
            blocks.append(f"{_mmlu_header(pool[t].subject)}\n\n{pool[t].prompt}")
            yield [{"role": "user", "content": "\n\n".join(blocks)}]
            continue
        msgs: Messages = [
            {"role": "system", "content": "You are an expert tutor. Reply with the letter of the answer."}
        ]
        for r, letter in shots:
            msgs.append({"role": "user", "content": f"{_mmlu_header(r.subject)}\n\n{r.prompt}"})
            msgs.append({"role": "assistant", "content": letter})
        msgs.append({"role": "user", "content": f"{_mmlu_header(pool[t].subject)}\n\n{pool[t].prompt}"})
        yield msgs


def _stem(prompt: str) -> str:
    """An MMLU prompt without its options and "Answer:" line (a plain passage for documents and questions)."""
    return re.split(r"\n[A-D]\. ", prompt, maxsplit=1)[0].strip()


def rag_prompts(pool: list[Row], n: int, rng: random.Random) -> Iterator[Messages]:
    for t in _sample(pool, n, rng):
        doc = "\n\n".join(_stem(pool[i].prompt) for i in [t, *_others(len(pool), t, 4, rng)])
        msgs: Messages = [{"role": "system", "content": "You are a careful research assistant."}]
        for turn, q in enumerate(_others(len(pool), t, 4, rng), start=1):
            if turn > 1:
                msgs.append(
                    {"role": "assistant", "content": f"Stand-in answer {turn - 1}: {_stem(pool[q].prompt)[:200]}"}
                )
            question = _stem(pool[q].prompt).split("\n")[-1]
            msgs.append({"role": "user", "content": f"{RAG_INSTRUCTION}\n\nDocument:\n{doc}\n\nQuestion: {question}"})
        yield msgs


def agent_prompts(pool: list[Row], n: int, rng: random.Random) -> Iterator[Messages]:
    for t in _sample(pool, n, rng):
        msgs: Messages = [
            {"role": "system", "content": "You are an agent. Use the search tool, then answer."},
            {"role": "user", "content": _stem(pool[t].prompt)},
        ]
        for step in range(3):
            hits = _others(len(pool), t, 3, rng)
            call_id = f"call_{t}_{step}"
            args = json.dumps({"query": _stem(pool[hits[0]].prompt)[:80], "top_k": 3})
            tool_call = {"id": call_id, "type": "function", "function": {"name": "search", "arguments": args}}
            msgs.append({"role": "assistant", "content": None, "tool_calls": [tool_call]})
            results = [
                {
                    "rank": r + 1,
                    "id": f"doc-{h}",
                    "subject": pool[h].subject,
                    "score": round(rng.random(), 4),
                    "text": _stem(pool[h].prompt),
                }
                for r, h in enumerate(hits)
            ]
            msgs.append(
                {"role": "tool", "tool_call_id": call_id, "content": json.dumps({"results": results}, indent=2)}
            )
        msgs.append({"role": "user", "content": "Thanks. " + _stem(pool[t].prompt).split("\n")[-1]})
        yield msgs


def plain_prompts(pool: list[Row], n: int, rng: random.Random) -> Iterator[Messages]:
    for t in _sample(pool, n, rng):
        msgs: Messages = [{"role": "system", "content": "You are a helpful assistant."}]
        size = 0
        while size < 2000:
            q = pool[_others(len(pool), t, 1, rng)[0]].prompt
            if len(msgs) > 1:
                msgs.append({"role": "assistant", "content": f"Stand-in answer: {_stem(q)[:150]}"})
            msgs.append({"role": "user", "content": q})
            size = sum(len(message_text(m)) for m in msgs)
        yield msgs


def families(pools: Pools, per_family: int, seed: int) -> dict[str, Callable[[], Iterator[Messages]]]:
    def rng(name: str) -> random.Random:
        return random.Random(f"{seed}:{name}")

    gsm, mmlu, every = pools.gsm8k, pools.mmlu, pools.every
    return {
        "gsm8k-8shot": lambda: gsm8k_prompts(gsm, per_family, rng("gsm"), instructed=False),
        "gsm8k-8shot-instr": lambda: gsm8k_prompts(gsm, per_family, rng("gsm-i"), instructed=True),
        "mmlu-5shot": lambda: mmlu_prompts(mmlu, per_family, rng("mmlu"), chat=False),
        "mmlu-5shot-chat": lambda: mmlu_prompts(mmlu, per_family, rng("mmlu-c"), chat=True),
        "rag-chat": lambda: rag_prompts(mmlu, per_family // 2, rng("rag")),
        "agent-tools": lambda: agent_prompts(mmlu, per_family // 2, rng("agent")),
        "plain-chat": lambda: plain_prompts(every, per_family // 2, rng("plain")),
    }


def _last_user(msgs: Messages) -> str:
    return next((message_text(m) for m in reversed(msgs) if m.get("role") == "user"), "")


def independent_failures(before: Messages, after: Messages) -> int:
    """A check that shares no code with the guard: digit runs, fenced blocks, the last line of the last user turn."""
    text_b = "\n".join(message_text(m) for m in before)
    text_a = "\n".join(message_text(m) for m in after)
    fails = len(set(re.findall(r"\d+", text_b)) - set(re.findall(r"\d+", text_a)))
    fails += sum(block not in text_a for block in fenced_blocks(text_b))
    last_line = " ".join(_last_user(before).strip().split("\n")[-1].split())
    fails += last_line not in " ".join(_last_user(after).split())
    return fails


def run_family(prompts: list[Messages], tally: Tally, advance: Callable[[], None]) -> None:
    for msgs in prompts:
        started, cpu = time.perf_counter_ns(), time.thread_time_ns()
        result = compress_messages(msgs, MODEL)
        tally.latencies_ms.append((time.thread_time_ns() - cpu) / 1e6)
        tally.wall_ms.append((time.perf_counter_ns() - started) / 1e6)
        tally.prompts += 1
        tally.chars += sum(len(message_text(m)) for m in msgs)
        tally.before += result.tokens_before
        tally.after += result.tokens_after
        if result.status == "fallback":
            tally.fallbacks += 1
            reason = (result.fallback_reason or "").split(":")[0]
            tally.reasons[reason] = tally.reasons.get(reason, 0) + 1
        if result.status == "compressed":
            tally.compressed += 1
            report = evaluate(msgs, result.messages)
            tally.checked += report.checked
            tally.retained += report.retained
            tally.independent_failures += independent_failures(msgs, result.messages)
        advance()


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def _total(tallies: dict[str, Tally], names: tuple[str, ...]) -> float:
    before = sum(tallies[n].before for n in names if n in tallies)
    after = sum(tallies[n].after for n in names if n in tallies)
    return round(100.0 * (before - after) / before, 2) if before else 0.0


def print_table(tallies: dict[str, Tally]) -> None:
    head = (
        f"{'family':<18} {'prompts':>7} {'KB':>5} {'tok before':>10} {'tok after':>9} {'saved %':>7} "
        f"{'compr':>5} {'fallb':>5} {'retained':>9} {'indep':>5} {'p50 ms':>7} {'p99 ms':>7} {'p99 wall':>8}"
    )
    print(head)
    print("-" * len(head))
    for name, t in tallies.items():
        n = max(t.prompts, 1)
        retention = f"{100.0 * t.retained / t.checked:.1f}%" if t.checked else "-"
        print(
            f"{name:<18} {t.prompts:>7} {t.chars / n / 1024:>5.1f} {t.before / n:>10.0f} {t.after / n:>9.0f} "
            f"{t.saved_pct:>7.1f} {t.compressed:>5} {t.fallbacks:>5} {retention:>9} {t.independent_failures:>5} "
            f"{_pct(t.latencies_ms, 0.5):>7.3f} {_pct(t.latencies_ms, 0.99):>7.3f} {_pct(t.wall_ms, 0.99):>8.3f}"
        )
    reasons = {k: v for t in tallies.values() for k, v in t.reasons.items()}
    if reasons:
        print(f"fallback reasons: {reasons}")
    print("p50/p99 ms: CPU time of compress_messages (tokenizer included); p99 wall: elapsed, with whatever else runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=Path, default=DEFAULT_PROMPTS, help="CSV with a 'prompt' column")
    parser.add_argument("--per-family", type=int, default=600, help="prompts per few-shot family (half for chats)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    pools = load_pools(args.prompts)
    if len(pools.every) < 10:
        raise SystemExit("need at least 10 prompts to build 8-shot prompts")
    compress_messages([{"role": "user", "content": "warm  up"}], MODEL)  # loads the tokenizer outside the timings
    builders = families(pools, args.per_family, args.seed)
    tallies = {name: Tally() for name in builders}
    started = time.perf_counter()
    with Progress(console=Console(stderr=True), transient=True) as progress:
        for name, build in builders.items():
            prompts = list(build())
            task = progress.add_task(name, total=len(prompts))
            run_family(prompts, tallies[name], functools.partial(progress.advance, task))
    print(f"compression bench ({VERSION}) on {args.prompts}, model tokenizer {MODEL}, seed {args.seed}")
    print_table(tallies)
    every = list(tallies.values())
    checked, retained = sum(t.checked for t in every), sum(t.retained for t in every)
    latencies = [ms for t in every for ms in t.latencies_ms]
    wall = [ms for t in every for ms in t.wall_ms]
    headline = {
        "bench": "compression",
        "version": VERSION,
        "prompts": sum(t.prompts for t in every),
        "fewshot_tokens_saved_pct": _total(tallies, FEWSHOT),
        "transcript_tokens_saved_pct": _total(tallies, TRANSCRIPTS),
        "per_family_saved_pct": {n: round(t.saved_pct, 2) for n, t in tallies.items()},
        "guard_retention_pct": round(100.0 * retained / checked, 3) if checked else 100.0,
        "independent_check_failures": sum(t.independent_failures for t in every),
        "fallbacks": sum(t.fallbacks for t in every),
        "p50_ms": round(_pct(latencies, 0.5), 3),
        "p99_ms": round(_pct(latencies, 0.99), 3),
        "p99_wall_ms": round(_pct(wall, 0.99), 3),
        "plain_2kb_p99_ms": round(_pct(tallies["plain-chat"].latencies_ms, 0.99), 3),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
