"""The master key that guards the admin API (``/admin/...``, and ``/metrics`` with ``gateway.metrics_auth``).

It is read once at start from the environment variable named by ``gateway.master_key_env`` (default
``APEX_MASTER_KEY``) and compared in constant time; without it, the admin API answers 403 and says how to enable it.
Wrong master keys are throttled per client address (``gateway.throttle``; the address gets 429 before its key is
compared), counted in ``apex_admin_auth_failures`` and logged with the client address, never the key.
"""

from __future__ import annotations

import hmac
import logging
import os

from starlette.requests import Request

from contracts.settings import Settings
from gateway.errors import AuthenticationError, PermissionDeniedError, RateLimitError
from gateway.inbound import bearer_token
from gateway.metrics import GatewayMetrics
from gateway.throttle import FailureThrottle

__all__ = ["MasterKey", "client_address"]

log = logging.getLogger("apex.gateway.auth")


def client_address(request: Request) -> str:
    """The peer's address as the server saw it (behind a proxy: the proxy's, unless the server trusts its
    forwarding headers)."""
    client = request.client
    return client.host if client is not None else "unknown"


class MasterKey:
    def __init__(self, settings: Settings, metrics: GatewayMetrics | None = None) -> None:
        g = settings.gateway
        self._env = g.master_key_env
        value = os.environ.get(self._env)
        self._value = value.encode() if value else None
        self._throttle = FailureThrottle(g.auth_failures_per_s, g.auth_failure_burst)
        self._metrics = metrics or GatewayMetrics()

    def require(self, request: Request) -> None:
        if self._value is None:
            raise PermissionDeniedError(
                f"The admin API is disabled: set {self._env} in the gateway's environment to enable it.",
                code="admin_disabled",
            )
        client = client_address(request)
        # a token is spent before the comparison, so a throttled address learns nothing from a correct guess
        wait = self._throttle.take(client)
        if wait is not None:
            self._metrics.admin_auth_failed["throttled"].inc()
            raise RateLimitError(
                "Too many failed admin authentications from this address; retry later.",
                code="too_many_auth_failures",
                retry_after=wait,
            )
        try:
            token = bearer_token(request).encode()
        except AuthenticationError:
            self._failed(client, request)
            raise
        if not hmac.compare_digest(token, self._value):
            self._failed(client, request)
            raise AuthenticationError("The admin API needs the master key.", code="invalid_master_key")
        self._throttle.refund(client)

    def _failed(self, client: str, request: Request) -> None:
        self._metrics.admin_auth_failed["invalid_master_key"].inc()
        log.warning("admin authentication failed from %s on %s", client, request.url.path)
