"""Send a chat call to a deployment of its model group, retrying and falling back as the routing settings say.

The dispatcher owns everything between "this model was asked for" and "this provider answered": which
deployment serves the call (``balancer``), which failures are retried and after how long (``backoff``), which
deployments are skipped (``breaker``), and what the call record says about it (provider, served model, price
model, upstream time, ``routing_decision``). Order of attempts: the requested model's deployments (untried ones
first, then the same ones again after a backoff), then each fallback model's group the same way.

Streams are opened and their first chunk awaited here, so a failure before the first byte is still an ordinary
error with its own status code — and still retried. After the first chunk, failures propagate to the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from contracts.settings import ModelRoute, Settings
from gateway.calls import CallRecord
from gateway.errors import ApexError, UpstreamError, UpstreamRateLimitError, UpstreamTimeoutError
from gateway.metrics import GatewayMetrics
from gateway.providers.base import ChatResult, EmbeddingResult, Provider, StreamChunk
from gateway.routing.backoff import backoff_delay, counts_against_deployment, is_retryable
from gateway.routing.balancer import BalancingStrategy, make_strategy
from gateway.routing.breaker import CircuitState
from gateway.routing.deployment import DeploymentState, ModelGroup, build_groups
from gateway.routing.health import HealthChecker

__all__ = ["Dispatcher"]

T = TypeVar("T")


def _note(call: CallRecord, what: str) -> None:
    """Record what routing did, after what learned routing decided (``auto: weak (...)``) if it did."""
    call.routing_decision = f"{call.routing_decision}; {what}" if call.routing_decision else what


Attempt = Callable[[DeploymentState, ModelGroup, float], Awaitable[T]]


def _reason(err: ApexError) -> str:
    if isinstance(err, UpstreamRateLimitError):
        return "429"
    if isinstance(err, UpstreamTimeoutError):
        return "timeout"
    code = err.code or type(err).__name__
    return code.removeprefix("upstream_")


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        providers: dict[str, Provider],
        metrics: GatewayMetrics,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.providers = providers
        self.metrics = metrics
        self.rng = rng or random.Random()
        self.clock = clock
        self._sleep = sleep
        self.groups = build_groups(settings.models, settings.routing, clock, self._circuit_changed)
        self._strategies: dict[str, BalancingStrategy] = {
            name: make_strategy(g.settings) for name, g in self.groups.items()
        }
        self._plans: dict[str, list[ModelGroup]] = {}  # per configured route: groups and fallbacks never change
        self.health: HealthChecker | None = None

    def deployments(self) -> list[DeploymentState]:
        return [d for g in self.groups.values() for d in g.deployments]

    async def start(self) -> None:
        for dep in self.deployments():
            self.metrics.circuit_state.labels(dep.id).set(int(dep.breaker.state))
        hc = self.settings.routing.health_check
        if hc.interval_s > 0:
            self.health = HealthChecker(self.deployments(), self.providers, hc)
            self.health.start()

    async def stop(self) -> None:
        if self.health is not None:
            await self.health.stop()
            self.health = None

    def _circuit_changed(self, deployment: str, state: CircuitState) -> None:
        self.metrics.circuit_state.labels(deployment).set(int(state))

    # -- the two entry points -----------------------------------------------------------------------------------

    async def chat(self, call: CallRecord, body: dict[str, Any], route: ModelRoute) -> ChatResult:
        return await self._unary(call, route, lambda provider, target, kw: provider.chat(body, target, **kw))

    async def embed(self, call: CallRecord, body: dict[str, Any], route: ModelRoute) -> EmbeddingResult:
        """Embeddings get the chat path's balancing, retries, breaker and fallbacks."""
        return await self._unary(call, route, lambda provider, target, kw: provider.embed(body, target, **kw))

    def _unary(
        self, call: CallRecord, route: ModelRoute, send: Callable[[Provider, str, dict[str, Any]], Awaitable[T]]
    ) -> Coroutine[Any, Any, T]:
        """The routed call, to be awaited by the entry point (one coroutine fewer per call)."""

        async def attempt(dep: DeploymentState, group: ModelGroup, deadline: float) -> T:
            provider = self.providers[dep.provider]
            limit = min(group.settings.total_timeout_s, deadline - self.clock())
            dep.in_flight += 1
            t_up = time.perf_counter()
            try:
                if getattr(provider, "enforces_timeout", False):
                    # the HTTP client's own timer bounds the call: one timer per call instead of two (bench/)
                    result = await send(provider, dep.target, {"timeout_s": limit})
                else:
                    async with asyncio.timeout(limit):
                        result = await send(provider, dep.target, {})
            except TimeoutError:
                self._failed(dep, err := self._timeout(dep, limit))
                raise err from None
            except ApexError as err:
                self._failed(dep, err)
                raise
            except BaseException:
                dep.breaker.release()
                raise
            finally:
                dep.in_flight -= 1
                call.upstream_s += time.perf_counter() - t_up
            self._succeeded(dep, time.perf_counter() - t_up)
            return result

        return self._route(call, route, attempt)

    async def open_stream(
        self, call: CallRecord, body: dict[str, Any], route: ModelRoute
    ) -> tuple[StreamChunk, AsyncGenerator[StreamChunk, None]]:
        async def attempt(
            dep: DeploymentState, group: ModelGroup, deadline: float
        ) -> tuple[StreamChunk, AsyncGenerator[StreamChunk, None]]:
            provider = self.providers[dep.provider]
            limit = min(group.settings.first_byte_timeout_s, deadline - self.clock())
            attempt_end = self.clock() + group.settings.total_timeout_s
            chunks = provider.chat_stream(body, dep.target)
            dep.in_flight += 1
            t_up = time.perf_counter()
            failure: ApexError | None = None
            try:
                async with asyncio.timeout(limit):
                    first = await anext(chunks)
            except StopAsyncIteration:
                failure = UpstreamError(
                    f"provider {dep.provider!r} returned an empty stream", code="upstream_empty_stream"
                )
            except TimeoutError:
                failure = self._timeout(dep, limit, what="sent no first chunk")
            except ApexError as err:
                failure = err
            except BaseException:
                dep.in_flight -= 1
                dep.breaker.release()
                await _close_quietly(chunks)
                raise
            finally:
                call.upstream_s += time.perf_counter() - t_up
            if failure is not None:
                dep.in_flight -= 1
                await _close_quietly(chunks)
                self._failed(dep, failure)
                raise failure
            self._succeeded(dep, time.perf_counter() - t_up)
            return first, self._rest_of_stream(dep, chunks, attempt_end)

        return await self._route(call, route, attempt)

    # -- retry and fallback ---------------------------------------------------------------------------------------

    def _plan(self, route: ModelRoute) -> list[ModelGroup]:
        """The requested model's group, then its fallbacks (and theirs), each once, in order."""
        first = self.groups.get(route.name)
        if first is not None and first.route is route:
            plan = self._plans.get(route.name)
            if plan is None:
                plan = self._plans[route.name] = self._build_plan(first)
            return plan
        if first is None or first.route != route:
            # a route built on the fly (not from settings): routed, but its deployments keep no history
            first = build_groups((route,), self.settings.routing, self.clock, self._circuit_changed)[route.name]
            self._strategies.setdefault(route.name, make_strategy(first.settings))
        return self._build_plan(first)

    def _build_plan(self, first: ModelGroup) -> list[ModelGroup]:
        plan, queue, seen = [first], list(first.route.fallbacks), {first.route.name}
        while queue:
            name = queue.pop(0)
            if name in seen or name not in self.groups:
                continue
            seen.add(name)
            plan.append(self.groups[name])
            queue.extend(self.groups[name].route.fallbacks)
        return plan

    async def _route(self, call: CallRecord, route: ModelRoute, attempt: Attempt[T]) -> T:
        plan = self._plan(route)
        if call.baseline_price_model is None:
            call.baseline_price_model = route.baseline_price_model
        deadline = self.clock() + plan[0].settings.deadline_s
        attempts = 0
        last_err: ApexError | None = None
        first_failed: DeploymentState | None = None
        for group in plan:
            s = group.settings
            tried: set[str] = set()
            skipped: set[str] = set()  # 429 with a Retry-After too long to wait for
            retry = 0
            for _ in range(s.retries + 1):
                if deadline - self.clock() <= 0:
                    break
                live = [d for d in group.deployments if d.id not in skipped and d.breaker.available()]
                fresh = [d for d in live if d.id not in tried]
                if not live:
                    break
                if not fresh:
                    wait = backoff_delay(retry, s.backoff_base_s, s.backoff_max_s, self.rng)
                    if last_err is not None and last_err.retry_after is not None:
                        wait = max(wait, last_err.retry_after)
                    retry += 1
                    if wait >= deadline - self.clock():
                        break
                    await self._sleep(wait)
                    live = [d for d in live if d.breaker.available()]
                    if not live:
                        break
                candidates = fresh or live
                dep = (
                    candidates[0]
                    if len(candidates) == 1
                    else self._strategies[group.route.name].choose(candidates, self.rng)
                )
                if not dep.breaker.acquire():
                    continue  # another call took the half-open probe slot meanwhile
                attempts += 1
                self._bind(call, dep)
                try:
                    result = await attempt(dep, group, deadline)
                except ApexError as err:
                    if not is_retryable(err):
                        if attempts > 1:
                            _note(call, f"failed after {attempts} attempts: {_reason(err)}")
                        raise
                    last_err, first_failed = err, first_failed or dep
                    tried.add(dep.id)
                    ra = err.retry_after if isinstance(err, UpstreamRateLimitError) else None
                    if ra is not None and (ra > s.retry_after_max_s or ra >= deadline - self.clock()):
                        skipped.add(dep.id)
                    continue
                if last_err is not None and first_failed is not None:
                    _note(call, self._decision(route, group, first_failed, dep, last_err, attempts))
                return result
        if last_err is not None:
            _note(call, f"failed after {attempts} attempts: {_reason(last_err)}")
            raise last_err
        if call.provider is None:
            self._bind(call, plan[0].deployments[0])
        _note(call, "no deployment available")
        raise UpstreamError(
            f"every deployment of model {route.name!r} (and its fallbacks) has an open circuit after repeated "
            "failures; try again shortly (GET /admin/deployments shows their state)",
            code="no_healthy_deployment",
        )

    @staticmethod
    def _decision(
        route: ModelRoute,
        group: ModelGroup,
        first_failed: DeploymentState,
        served: DeploymentState,
        err: ApexError,
        attempts: int,
    ) -> str:
        if group.route.name != route.name:
            return f"fallback:{route.name}->{group.route.name} after {_reason(err)} ({attempts} attempts)"
        return f"retry:{first_failed.id}->{served.id} after {_reason(err)} ({attempts} attempts)"

    # -- bookkeeping per attempt ----------------------------------------------------------------------------------

    def _bind(self, call: CallRecord, dep: DeploymentState) -> None:
        provider = self.providers[dep.provider]
        call.provider, call.provider_kind, call.is_simulated = provider.name, provider.kind, provider.is_simulated
        call.served_model = dep.target
        call.price_model = dep.price_model

    def _succeeded(self, dep: DeploymentState, latency_s: float) -> None:
        dep.served += 1
        dep.observe_latency(latency_s)
        dep.breaker.record_success()

    def _failed(self, dep: DeploymentState, err: ApexError) -> None:
        dep.failed += 1
        dep.last_error, dep.last_error_at = f"{err.code or type(err).__name__}: {err.message}"[:300], time.time()
        if counts_against_deployment(err):
            dep.breaker.record_failure()
        else:
            dep.breaker.release()

    def _timeout(self, dep: DeploymentState, limit: float, what: str = "did not answer") -> UpstreamTimeoutError:
        return UpstreamTimeoutError(
            f"deployment {dep.id!r} {what} within {max(limit, 0):.1f}s", code="upstream_timeout"
        )

    async def _rest_of_stream(
        self, dep: DeploymentState, chunks: AsyncGenerator[StreamChunk, None], end: float
    ) -> AsyncGenerator[StreamChunk, None]:
        try:
            while True:
                try:
                    async with asyncio.timeout(max(end - self.clock(), 0)):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise UpstreamTimeoutError(
                        f"deployment {dep.id!r} did not finish its stream within total_timeout_s",
                        code="upstream_timeout",
                    ) from None
                yield chunk
        except ApexError as err:
            dep.failed += 1
            dep.last_error, dep.last_error_at = f"{err.code}: {err.message}"[:300], time.time()
            if counts_against_deployment(err):
                dep.breaker.record_failure()
            raise
        finally:
            dep.in_flight -= 1
            await _close_quietly(chunks)


async def _close_quietly(chunks: AsyncGenerator[StreamChunk, None]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        # the attempt already failed (or succeeded); a second error while closing adds nothing
        with contextlib.suppress(Exception):
            await aclose()
