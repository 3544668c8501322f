"""Breaker, balancer, backoff and routing config in isolation, with a fake clock and a seeded RNG."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from contracts.settings import BreakerSettings, ConfigError, Deployment, RoutingSettings
from gateway.errors import UpstreamBadRequestError, UpstreamError, UpstreamRateLimitError, UpstreamTimeoutError
from gateway.routing.backoff import backoff_delay, counts_against_deployment, is_retryable
from gateway.routing.balancer import LatencyStrategy, WeightedStrategy
from gateway.routing.breaker import CircuitBreaker, CircuitState
from gateway.routing.deployment import DeploymentState
from gateway.settings import load_settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: FakeClock, **kw: float) -> tuple[CircuitBreaker, list[CircuitState]]:
    changes: list[CircuitState] = []
    settings = BreakerSettings(**{"failures": 3, "window_s": 10, "cooldown_s": 5, **kw})
    return CircuitBreaker(settings, clock, changes.append), changes


def test_breaker_opens_after_n_failures_within_the_window():
    clock = FakeClock()
    b, changes = breaker(clock)
    b.record_failure()
    clock.now += 11  # the first failure ages out of the window
    b.record_failure()
    b.record_failure()
    assert b.state is CircuitState.CLOSED and b.recent_failures() == 2
    b.record_failure()
    assert b.state is CircuitState.OPEN and not b.available() and not b.acquire()
    assert changes == [CircuitState.OPEN]


def test_breaker_half_open_lets_one_probe_through_and_closes_on_success():
    clock = FakeClock()
    b, changes = breaker(clock, failures=1)
    b.record_failure()
    clock.now += 4.9
    assert b.state is CircuitState.OPEN
    clock.now += 0.1
    assert b.state is CircuitState.HALF_OPEN and b.available()
    assert b.acquire() and not b.acquire() and not b.available()  # one probe at a time
    b.record_success()
    assert b.state is CircuitState.CLOSED and b.acquire() and b.acquire()
    assert changes == [CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED]


def test_breaker_failed_probe_reopens_for_a_full_cooldown():
    clock = FakeClock()
    b, _ = breaker(clock, failures=1)
    b.record_failure()
    clock.now += 5
    assert b.acquire()
    b.record_failure()
    assert b.state is CircuitState.OPEN
    clock.now += 4
    assert b.state is CircuitState.OPEN
    clock.now += 1
    assert b.state is CircuitState.HALF_OPEN


def test_breaker_released_probe_frees_the_slot():
    clock = FakeClock()
    b, _ = breaker(clock, failures=1)
    b.record_failure()
    clock.now += 5
    assert b.acquire()
    b.release()
    assert b.state is CircuitState.HALF_OPEN and b.acquire()


def test_health_probe_may_go_while_open_but_not_beside_another_probe():
    clock = FakeClock()
    b, _ = breaker(clock, failures=1)
    assert not b.acquire_probe()  # closed: nothing to probe
    b.record_failure()
    assert b.acquire_probe() and not b.acquire_probe()
    b.record_success()
    assert b.state is CircuitState.CLOSED


def dep(name: str, weight: float = 1.0, ewma: float | None = None) -> DeploymentState:
    d = DeploymentState(
        name,
        "m",
        Deployment(provider=name, upstream_model="m", weight=weight),
        CircuitBreaker(BreakerSettings(), FakeClock()),
        alpha=0.5,
    )
    d.ewma_latency_s = ewma
    return d


def test_weighted_policy_matches_the_weights():
    rng = random.Random(7)
    a, b, c = dep("a", 6), dep("b", 3), dep("c", 1)
    picks = Counter(WeightedStrategy().choose([a, b, c], rng).id for _ in range(10_000))
    assert picks["a"] / 10_000 == pytest.approx(0.6, abs=0.02)
    assert picks["b"] / 10_000 == pytest.approx(0.3, abs=0.02)
    assert picks["c"] / 10_000 == pytest.approx(0.1, abs=0.02)


def test_latency_policy_prefers_the_lowest_ewma_and_still_explores():
    rng = random.Random(7)
    fast, slow = dep("fast", ewma=0.05), dep("slow", ewma=0.5)
    picks = Counter(LatencyStrategy(explore=0.2).choose([slow, fast], rng).id for _ in range(10_000))
    assert picks["fast"] / 10_000 == pytest.approx(0.9, abs=0.02)  # 80% greedy + half of the 20% exploration
    assert picks["slow"] > 0


def test_latency_policy_measures_unmeasured_deployments_first():
    assert LatencyStrategy(explore=0).choose([dep("a", ewma=0.1), dep("new")], random.Random(1)).id == "new"


def test_ewma_moves_toward_new_samples():
    d = dep("a")
    d.observe_latency(1.0)
    d.observe_latency(0.0)
    assert d.ewma_latency_s == pytest.approx(0.5)


@pytest.mark.parametrize("retry", [0, 1, 2, 3, 8])
def test_backoff_is_jittered_exponential_and_capped(retry):
    rng = random.Random(retry)
    delays = [backoff_delay(retry, 0.1, 1.0, rng) for _ in range(200)]
    ceiling = min(1.0, 0.1 * 2**retry)
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1


RETRY_CASES = [
    ("429", UpstreamRateLimitError("x", code="upstream_rate_limited"), True, False),
    ("timeout", UpstreamTimeoutError("x", code="upstream_timeout"), True, True),
    ("500", UpstreamError("x", code="upstream_500"), True, True),
    ("503", UpstreamError("x", code="upstream_503"), True, True),
    ("unreachable", UpstreamError("x", code="upstream_unreachable"), True, True),
    ("auth", UpstreamError("x", code="upstream_auth_failed"), False, False),
    ("400", UpstreamBadRequestError("x", code="upstream_bad_request"), False, False),
]


@pytest.mark.parametrize(("err", "retry", "counts"), [c[1:] for c in RETRY_CASES], ids=[c[0] for c in RETRY_CASES])
def test_which_errors_are_retried_and_which_open_the_circuit(err, retry, counts):
    assert is_retryable(err) is retry
    assert counts_against_deployment(err) is counts


PROVIDERS = "providers:\n  - {name: p, kind: simulated}\n  - {name: q, kind: simulated}\n"
BAD = [
    ("both-forms", "models:\n  - {name: m, provider: p, deployments: [{provider: q}]}\n", "models.0"),
    ("no-deployment", "models:\n  - {name: m}\n", "needs provider"),
    (
        "deployment-unknown-provider",
        "models:\n  - {name: m, deployments: [{provider: p}, {provider: nope}]}\n",
        "models.0.deployments.1.provider",
    ),
    (
        "zero-weight",
        "models:\n  - {name: m, deployments: [{provider: p, weight: 0}]}\n",
        "models.0.deployments.0.weight",
    ),
    ("unknown-fallback", "models:\n  - {name: m, provider: p, fallbacks: [ghost]}\n", "models.0.fallbacks: 'ghost'"),
    ("self-fallback", "models:\n  - {name: m, provider: p, fallbacks: [m]}\n", "lists itself"),
    (
        "fallback-cycle",
        "models:\n  - {name: a, provider: p, fallbacks: [b]}\n  - {name: b, provider: q, fallbacks: [a]}\n",
        "cycle a -> b -> a",
    ),
    ("bad-strategy", "routing:\n  strategy: fastest\n", "routing.strategy"),
    ("bad-override", "models:\n  - {name: m, provider: p, routing: {retries: -1}}\n", "models.0.routing.retries"),
    ("breaker-field", "routing:\n  breaker: {failures: 0}\n", "routing.breaker.failures"),
]


@pytest.mark.parametrize(("text", "needle"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_routing_config_names_the_field(tmp_path, text, needle):
    path = tmp_path / "apex.yaml"
    path.write_text(PROVIDERS + text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert needle in str(info.value)


def test_shorthand_and_groups_and_overrides(tmp_path):
    path = tmp_path / "apex.yaml"
    path.write_text(
        PROVIDERS
        + "routing: {retries: 3, breaker: {cooldown_s: 7}}\n"
        + "models:\n"
        + "  - {name: short, provider: p, upstream_model: up, price_model: gpt-4o}\n"
        + "  - name: grp\n"
        + "    deployments: [{provider: p, weight: 2, region: eu}, {provider: q, upstream_model: other}]\n"
        + "    fallbacks: [short]\n"
        + "    routing: {retries: 0, total_timeout_s: 5}\n"
    )
    s = load_settings(path)
    (one,) = s.route("short").group()
    assert (one.provider, one.target, one.price_model, one.weight) == ("p", "up", "gpt-4o", 1.0)
    grp = s.route("grp")
    assert [(d.provider, d.target, d.weight, d.region) for d in grp.group()] == [
        ("p", "grp", 2.0, "eu"),
        ("q", "other", 1.0, None),
    ]
    assert grp.baseline_price_model == "grp" and s.route("short").baseline_price_model == "gpt-4o"
    eff = s.routing.for_route(grp)
    assert (eff.retries, eff.total_timeout_s, eff.breaker.cooldown_s) == (0, 5.0, 7.0)
    assert s.routing.for_route(s.route("short")).retries == 3
    assert RoutingSettings().health_check.interval_s == 0  # active health checks are off unless configured
