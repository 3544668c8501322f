"""A realistic simulated workload, sent through the gateway with the official ``openai`` SDK.

Several customers, each with users and product features, asking for a mix of models; some calls stream, some
set ``max_tokens``, a few ask for a model that is not configured (to show errors in the marts), and one customer
uses a fine-tuned alias that is missing from the price table (cost flagged unknown, never $0). The optimizers
each get their share:

- exact cache: frequently asked questions repeated word for word (``x-apex-cache: on``);
- semantic cache: the same questions reworded (``x-apex-semantic-cache: on``; Globex runs it in ``shadow``
  mode, so its would-be hits are logged, not served);
- compression: few-shot prompts with repeated boilerplate and ragged whitespace (``x-apex-compress: on``);
- learned routing: Initech's SQL assistant asks for ``apex/auto`` with easy and hard questions.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import openai

__all__ = ["CUSTOMERS", "WorkloadResult", "run_workload"]

CUSTOMERS: dict[str, dict[str, list[str]]] = {
    "cust_acme": {
        "users": ["alice@acme.test", "bob@acme.test", "carol@acme.test"],
        "features": ["support-bot", "ticket-summary"],
        "models": ["gpt-4o", "gpt-4o-mini", "acme-ft-support-v2"],
    },
    "cust_globex": {
        "users": ["dana@globex.test", "eli@globex.test"],
        "features": ["code-review", "search"],
        "models": ["claude-sonnet-4-5", "gpt-4.1-mini"],
    },
    "cust_initech": {
        "users": ["frank@initech.test", "gina@initech.test", "hal@initech.test", "ivy@initech.test"],
        "features": ["report-writer", "sql-assistant"],
        "models": ["gemini-2.5-flash", "gpt-4o-mini", "gpt-4o"],
    },
}

_TASKS = [
    "Summarise this support ticket in two sentences: {ctx}",
    "Write a polite reply to the customer who says: {ctx}",
    "Review this function for bugs and suggest a fix:\n```python\n{code}\n```",
    "Translate to SQL: total revenue per region for {period}, ordered by revenue.",
    "Explain the difference between {a} and {b} for a new engineer.",
    "Draft a status report for the {a} project covering risks, progress and next steps. Context: {ctx}",
    "Classify the sentiment of: {ctx}",
    "What is {x} times {y}? Show your working.",
]
_CTX = [
    "my invoice for October shows a charge twice and I want a refund",
    "the export to CSV times out when the report has more than 10,000 rows",
    "login works on desktop but the mobile app keeps asking for my password",
    "we need the dashboard to show spend per team, not just per project",
    "great product, but the onboarding emails arrive in the wrong time zone",
]
_CODE = [
    "def mean(xs):\n    return sum(xs) / len(xs)",
    "def last(items):\n    return items[len(items)]",
    "for i in range(10):\n    print(i)\nprint(i * undefined)",
]
# Questions users ask again and again: sent with the exact cache switched on (x-apex-cache: on).
_FAQ = [
    "How do I reset my password?",
    "What are your support hours?",
    "How do I export my invoices as CSV?",
    "Which regions do you host data in?",
    "How do I add a teammate to my workspace?",
]
# Rewordings of the FAQ: what users type when they do not copy-paste (the semantic cache's business).
_FAQ_REWORDED = [
    ["How can I reset my password?", "How do I change my password if I forgot it?", "How to reset my password?"],
    ["What are the support hours?", "When is your support team available?", "What hours is support open?"],
    ["How can I export my invoices to CSV?", "How do I download my invoices as a CSV file?"],
    ["In which regions is my data hosted?", "Which regions do you store data in?"],
    ["How can I add a teammate to my workspace?", "How do I invite a colleague to my workspace?"],
]
_SEMANTIC_MODE = {"cust_globex": "shadow"}
# Few-shot prompts: worked examples under a repeated instruction, as prompt templates often produce them.
_SHOTS = [
    ("Tom has 3 boxes of 12 pencils and gives away 7. How many pencils are left?", "3 * 12 = 36; 36 - 7 = 29."),
    ("A train travels 60 km per hour for 2.5 hours. How far does it go?", "60 * 2.5 = 150 km."),
    ("Sara buys 4 notebooks at $2.50 each and pays with $20. What is her change?", "4 * 2.50 = 10; 20 - 10 = 10."),
    ("A recipe needs 3 eggs per cake. How many eggs for 7 cakes?", "3 * 7 = 21 eggs."),
    ("There are 28 students and each table seats 4. How many tables are needed?", "28 / 4 = 7 tables."),
    ("A shirt costs $40 and is 25% off. What is the sale price?", "40 * 0.25 = 10; 40 - 10 = 30."),
]
_FEW_SHOT_QUESTIONS = [
    "A farmer has 17 cows and buys 3 times as many sheep. How many animals does he have?",
    "A tank holds 240 litres and drains 15 litres per minute. How long until it is empty?",
    "Mia reads 18 pages a day. How many pages does she read in 3 weeks?",
]
# Questions for apex/auto: short lookups a cheap model answers, and multi-step reasoning that needs the strong one.
_AUTO_EASY = [
    "What is the capital of France?",
    "Translate 'good morning' into Spanish.",
    "List three primary colours.",
    "What does SQL stand for?",
]
_AUTO_HARD = [
    "Write a SQL query that returns, for each customer, the longest streak of consecutive months with at least one "
    "order, handling gaps and customers with a single order, and explain why it is correct.",
    "Prove that the sum of the first n odd numbers is n squared, then generalise to arithmetic series.",
    "A store's revenue grew 12% in Q1, fell 8% in Q2 and grew 5% in Q3. If Q3 revenue was $1,234,000, what was "
    "revenue before Q1? Show each step and check the answer.",
]
_TOPICS = [
    "a process and a thread",
    "TCP and UDP",
    "a list and a tuple",
    "OLTP and OLAP",
    "caching and memoisation",
]


def _few_shot(rng: random.Random) -> str:
    instruction = "Solve the following math word problem.   Show the arithmetic.\n\n"
    blocks = [f"{instruction}Question:  {q}\nAnswer:   {a}\n\n\n" for q, a in rng.sample(_SHOTS, 4)]
    return "".join(blocks) + f"{instruction}Question:  {rng.choice(_FEW_SHOT_QUESTIONS)}\nAnswer:"


def _prompt(rng: random.Random) -> str:
    a, b = rng.choice(_TOPICS).split(" and ")
    return rng.choice(_TASKS).format(
        ctx=rng.choice(_CTX),
        code=rng.choice(_CODE),
        period=rng.choice(["Q3 2026", "last month", "2025"]),
        a=a,
        b=b,
        x=rng.randint(12, 999),
        y=rng.randint(12, 999),
    )


@dataclass
class WorkloadResult:
    sent: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    streamed: int = 0
    by_customer: dict[str, int] = field(default_factory=dict)


async def run_workload(
    base_url: str,
    keys: dict[str, str],
    *,
    requests: int = 400,
    concurrency: int = 32,
    seed: int = 7,
    error_share: float = 0.02,
    on_done: Callable[[], None] | None = None,
) -> WorkloadResult:
    """Send ``requests`` calls; ``keys`` maps customer → Apex key. Returns what happened."""
    rng = random.Random(seed)
    clients = {c: openai.AsyncOpenAI(base_url=base_url, api_key=k, max_retries=0) for c, k in keys.items()}
    result = WorkloadResult()
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        customer = rng.choice(list(keys))
        profile = CUSTOMERS.get(customer, CUSTOMERS["cust_acme"])
        model = rng.choice(profile["models"]) if rng.random() > error_share else "gpt-9-does-not-exist"
        messages = [{"role": "user", "content": _prompt(rng)}]
        if rng.random() < 0.4:
            messages.insert(
                0,
                {
                    "role": "system",
                    "content": f"You are the {rng.choice(profile['features'])} assistant. Be concise and accurate.",
                },
            )
        lever = rng.random()
        headers: dict[str, str] = {}
        faq = lever < 0.12
        if faq:
            model, messages = profile["models"][0], [{"role": "user", "content": rng.choice(_FAQ)}]
            headers["x-apex-cache"] = "on"
        elif lever < 0.27:
            # the original wording and its rewordings: the first asked fills the cache, the others can hit it
            group = rng.randrange(len(_FAQ))
            text = rng.choice([_FAQ[group], *_FAQ_REWORDED[group]])
            model, messages = profile["models"][0], [{"role": "user", "content": text}]
            headers["x-apex-semantic-cache"] = _SEMANTIC_MODE.get(customer, "on")
        elif lever < 0.37:
            model, messages = profile["models"][0], [{"role": "user", "content": _few_shot(rng)}]
            headers["x-apex-compress"] = "on"
        elif lever < 0.52 and customer == "cust_initech":
            model = "apex/auto"
            text = rng.choice(_AUTO_EASY) if rng.random() < 0.5 else rng.choice(_AUTO_HARD)
            messages = [{"role": "user", "content": text}]
        stream = rng.random() < 0.3
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "user": rng.choice(profile["users"]),
            "extra_headers": {
                "x-apex-feature": rng.choice(profile["features"]),
                "x-apex-tags": f"demo,{customer}",
                **headers,
            },
        }
        if not headers and rng.random() < 0.25:
            kwargs["max_tokens"] = rng.choice([64, 128, 256])
        await send(customer, kwargs, stream)

    async def send(customer: str, kwargs: dict, stream: bool = False) -> None:
        async with sem:
            result.sent += 1
            result.by_customer[customer] = result.by_customer.get(customer, 0) + 1
            try:
                client = clients[customer]
                if stream:
                    result.streamed += 1
                    s = await client.chat.completions.create(stream=True, **kwargs)
                    async for _ in s:
                        pass
                else:
                    await client.chat.completions.create(**kwargs)
                result.ok += 1
            except openai.APIStatusError as exc:
                name = f"{exc.status_code} {type(exc).__name__}"
                result.errors[name] = result.errors.get(name, 0) + 1
            finally:
                if on_done:
                    on_done()

    # A short sequential prelude, so every optimizer visibly acts however the concurrent part interleaves: the
    # FAQ asked once per customer (filling the semantic cache), then reworded (a hit, or a shadow hit for Globex),
    # an easy and a hard question for apex/auto, and one few-shot prompt to compress.
    prelude = _prelude(list(keys), rng)[:requests]
    for customer, kwargs in prelude:
        await send(customer, kwargs)
    await asyncio.gather(*(one(i) for i in range(requests - len(prelude))))
    for c in clients.values():
        await c.close()
    return result


def _prelude(customers: list[str], rng: random.Random) -> list[tuple[str, dict]]:
    calls: list[tuple[str, dict]] = []

    def ask(customer: str, model: str, text: str, headers: dict[str, str]) -> None:
        profile = CUSTOMERS.get(customer, CUSTOMERS["cust_acme"])
        tags = {"x-apex-feature": profile["features"][0], "x-apex-tags": f"demo,{customer}"}
        kwargs = {
            "model": model,
            "messages": [{"role": "user", "content": text}],
            "user": profile["users"][0],
            "extra_headers": {**tags, **headers},
        }
        calls.append((customer, kwargs))

    for wording in (_FAQ[0], _FAQ_REWORDED[0][0]):
        for customer in customers:
            model = CUSTOMERS.get(customer, CUSTOMERS["cust_acme"])["models"][0]
            ask(customer, model, wording, {"x-apex-semantic-cache": _SEMANTIC_MODE.get(customer, "on")})
    if "cust_initech" in customers:
        ask("cust_initech", "apex/auto", _AUTO_EASY[0], {})
        ask("cust_initech", "apex/auto", _AUTO_HARD[0], {})
    first = customers[0]
    ask(first, CUSTOMERS.get(first, CUSTOMERS["cust_acme"])["models"][0], _few_shot(rng), {"x-apex-compress": "on"})
    return calls
