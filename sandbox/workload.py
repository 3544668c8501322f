"""A realistic simulated workload, sent through the gateway with the official ``openai`` SDK.

Several customers, each with users and product features, asking for a mix of models; some calls stream, some
set ``max_tokens``, a fifth are frequently asked questions sent with the exact cache on, a few ask for a model
that is not configured (to show errors in the marts), and one customer uses a fine-tuned alias that is missing
from the price table (cost flagged unknown, never $0).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field

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
_TOPICS = [
    "a process and a thread",
    "TCP and UDP",
    "a list and a tuple",
    "OLTP and OLAP",
    "caching and memoisation",
]


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
        faq = rng.random() < 0.2
        if faq:
            model, messages = profile["models"][0], [{"role": "user", "content": rng.choice(_FAQ)}]
        stream = rng.random() < 0.3
        kwargs = {
            "model": model,
            "messages": messages,
            "user": rng.choice(profile["users"]),
            "extra_headers": {
                "x-apex-feature": rng.choice(profile["features"]),
                "x-apex-tags": f"demo,{customer}",
            },
        }
        if faq:
            kwargs["extra_headers"]["x-apex-cache"] = "on"
        elif rng.random() < 0.25:
            kwargs["max_tokens"] = rng.choice([64, 128, 256])
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

    await asyncio.gather(*(one(i) for i in range(requests)))
    for c in clients.values():
        await c.close()
    return result
