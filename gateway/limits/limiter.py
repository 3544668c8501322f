"""Admission for chat calls: price the worst case, reserve it against the key's and team's budgets, settle after.

The worst case is the prompt's tokens at the input price plus the completion cap (``max_completion_tokens``,
else ``max_tokens``, else ``limits.default_max_tokens``; times ``n``; plus a predicted output) at the output price.
The prompt is every billed input (``contracts.request_tokens``): text, tool definitions and calls, response formats,
images and audio by the published rules of every model the route may send it to. A model missing from the
price table is reserved, and settled, at ``limits.unknown_model_price_per_token`` for input and output alike: an
unknown price is never treated as free, or a new model name would bypass every budget.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from contracts.request_tokens import completion_tokens_extra, prompt_tokens_bound
from gateway.errors import RateLimitError
from gateway.limits.base import AdmissionRequest, BudgetLine, LimitStore
from gateway.limits.periods import current_window

if TYPE_CHECKING:
    from contracts.pricing import PriceTable
    from contracts.settings import LimitSettings, ModelRoute, Settings
    from gateway.calls import CallRecord
    from gateway.keys import ApiKey, KeyStore

__all__ = ["Limiter", "build_store"]

_TOKEN_CAP = 2**31  # absurd caps still reserve a finite (budget-busting) amount


def build_store(settings: Settings) -> LimitStore:
    """The backend ``limits.backend`` names."""
    limits = settings.limits
    if limits.backend == "redis":
        from gateway.limits.redis_store import RedisLimitStore

        return RedisLimitStore(limits.redis_url, prefix=limits.redis_prefix, reservation_ttl_s=limits.reservation_ttl_s)
    from gateway.limits.sqlite_store import SqliteLimitStore

    return SqliteLimitStore(settings.data.gateway_db_path, reservation_ttl_s=limits.reservation_ttl_s)


def _completion_cap(body: dict[str, Any], default: int) -> int:
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    cap = cap if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0 else default
    n = body.get("n")
    n = n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1
    return min(cap * n + completion_tokens_extra(body), _TOKEN_CAP)


def _route_models(route: ModelRoute) -> tuple[str, ...]:
    """Every model name the route may bill under: media are reserved at the dearest of their rules."""
    names = [route.baseline_price_model]
    for d in route.group():
        names += [n for n in (d.upstream_model, d.price_model) if n]
    return tuple(dict.fromkeys(names))


class Limiter:
    def __init__(self, store: LimitStore, keys: KeyStore, prices: PriceTable, settings: LimitSettings) -> None:
        self.store = store
        self.keys = keys
        self.prices = prices
        self.settings = settings
        self._solo: dict[str, tuple[ApiKey, str, tuple[BudgetLine, ...]]] = {}
        self._models: dict[str, tuple[ModelRoute, tuple[str, ...]]] = {}

    def route_models(self, route: ModelRoute) -> tuple[str, ...]:
        hit = self._models.get(route.name)
        if hit is not None and hit[0] is route:
            return hit[1]
        models = _route_models(route)
        self._models[route.name] = (route, models)
        return models

    def budgets(self, key: ApiKey, now: float) -> tuple[BudgetLine, ...]:
        window, resets = current_window(key.budget_period, now)
        if not key.team_id:
            # the same (immutable) key in the same window has the same line: reuse it rather than build it per call
            hit = self._solo.get(key.key_id)
            if hit is not None and hit[0] is key and hit[1] == window:
                return hit[2]
            solo = (BudgetLine("key", key.key_id, window, key.budget_usd, resets),)
            self._solo[key.key_id] = (key, window, solo)
            return solo
        team = self.keys.team(key.team_id)  # looked up each call: a team budget changed by an admin applies at once
        team_window, team_resets = current_window(team.period if team else "total", now)
        return (
            BudgetLine("key", key.key_id, window, key.budget_usd, resets),
            BudgetLine("team", key.team_id, team_window, team.budget_usd if team else None, team_resets),
        )

    def worst_case(
        self,
        body: dict[str, Any],
        messages: Any,
        price_model: str,
        *,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> tuple[float, int]:
        """(USD, tokens) the call can cost at most. Non-chat calls (embeddings) pass their own token counts."""
        if prompt_tokens is None:
            prompt_tokens = prompt_tokens_bound(messages or [], body, (price_model,), exact_model=price_model)
        prompt = prompt_tokens
        if completion_tokens is None:
            completion_tokens = _completion_cap(body, self.settings.default_max_tokens)
        completion = completion_tokens
        price = self.prices.lookup(price_model)
        if price is None:
            usd = (prompt + completion) * self.settings.unknown_model_price_per_token
        else:
            # a prompt token may be written to the provider's prompt cache, which costs more than plain input
            per_prompt_token = max(price.input_cost_per_token, price.cache_write_cost_per_token)
            usd = prompt * per_prompt_token + completion * price.output_cost_per_token
        return usd, prompt + completion

    async def admit(
        self,
        call: CallRecord,
        body: dict[str, Any],
        route: ModelRoute,
        *,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> None:
        """Reserve the call's worst case (raises ``RateLimitError``); the reservation rides on ``call``.

        Chat prompts are first reserved with a byte-length bound (no tokenizer on the hot path); only if that
        bound is refused are the tokens counted exactly and the reservation tried again."""
        assert call.key is not None
        exact = prompt_tokens is not None
        if prompt_tokens is None:
            models = self.route_models(route)
            prompt_tokens = prompt_tokens_bound(call.messages or [], body, models)
        try:
            call.reservation = await self.store.reserve(
                self._request(call, body, route, prompt_tokens, completion_tokens)
            )
        except RateLimitError:
            if exact:
                raise
            counted = prompt_tokens_bound(call.messages or [], body, models, exact_model=route.baseline_price_model)
            call.reservation = await self.store.reserve(self._request(call, body, route, counted, completion_tokens))

    def _request(
        self,
        call: CallRecord,
        body: dict[str, Any],
        route: ModelRoute,
        prompt_tokens: int,
        completion_tokens: int | None,
    ) -> AdmissionRequest:
        """What the store must hold for this call: its worst-case cost and tokens against the key's limits."""
        assert call.key is not None
        now = time.time()
        usd, tokens = self.worst_case(
            body,
            call.messages,
            route.baseline_price_model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )
        return AdmissionRequest(
            call.key.key_id, self.budgets(call.key, now), call.key.rpm, call.key.tpm, usd, tokens, now
        )

    def close(self, call: CallRecord) -> None:
        """After ``call.close``: settle to the priced cost, or release if nothing was used. Idempotent."""
        res, call.reservation = call.reservation, None
        if res is None:
            return
        u = call.usage
        if u is None:
            self.store.release(res)
            return
        if call.priced is not None and call.priced.cost_usd is not None:
            usd = call.priced.cost_usd
        else:
            usd = (u.prompt_tokens + u.completion_tokens) * self.settings.unknown_model_price_per_token
        self.store.settle(res, usd, u.prompt_tokens + u.completion_tokens)
