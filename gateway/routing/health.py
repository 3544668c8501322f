"""Active health checks: probe deployments whose circuit is open or half-open, and close it when one answers.

Each probe is a one-token chat call through the deployment's own provider adapter, so it works for every
provider kind and exercises the same path real calls take. Only unhealthy deployments are probed; healthy ones
are judged by the traffic they already get.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from contracts.settings import HealthCheckSettings
from gateway.errors import ApexError, UpstreamRateLimitError
from gateway.providers.base import Provider
from gateway.routing.backoff import counts_against_deployment
from gateway.routing.breaker import CircuitState
from gateway.routing.deployment import DeploymentState

__all__ = ["HealthChecker"]

log = logging.getLogger("apex.routing")

_PROBE = {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}


class HealthChecker:
    def __init__(
        self, deployments: Sequence[DeploymentState], providers: dict[str, Provider], settings: HealthCheckSettings
    ) -> None:
        self.deployments = list(deployments)
        self.providers = providers
        self.settings = settings
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="apex-health-checker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.interval_s)
            try:
                await self.check_once()
            except Exception:
                log.exception("health check round failed")  # the next round may well succeed

    async def check_once(self) -> None:
        unhealthy = [d for d in self.deployments if d.breaker.state is not CircuitState.CLOSED]
        await asyncio.gather(*(self._probe(d) for d in unhealthy))

    async def _probe(self, dep: DeploymentState) -> None:
        if not dep.breaker.acquire_probe():
            return
        provider = self.providers[dep.provider]
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                await provider.chat(dict(_PROBE), dep.target)
        except TimeoutError:
            dep.last_error = f"health check timed out after {self.settings.timeout_s}s"
            dep.breaker.record_failure()
        except ApexError as err:
            dep.last_error = f"health check: {err.code}: {err.message}"[:300]
            if counts_against_deployment(err) or isinstance(err, UpstreamRateLimitError):
                dep.breaker.record_failure()
            else:
                dep.breaker.release()  # it answered, but not to our probe: leave the verdict to real traffic
        except BaseException:
            dep.breaker.release()
            raise
        else:
            log.info("deployment %s answered its health check; circuit closed", dep.id)
            dep.breaker.record_success()
