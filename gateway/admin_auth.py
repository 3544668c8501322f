"""The master key that guards the admin API (``/admin/...``).

It is read once at start from the environment variable named by ``gateway.master_key_env`` (default
``APEX_MASTER_KEY``) and compared in constant time; without it, the admin API answers 403 and says how to enable it.
"""

from __future__ import annotations

import hmac
import os

from starlette.requests import Request

from contracts.settings import Settings
from gateway.errors import AuthenticationError, PermissionDeniedError
from gateway.inbound import bearer_token

__all__ = ["MasterKey"]


class MasterKey:
    def __init__(self, settings: Settings) -> None:
        self._env = settings.gateway.master_key_env
        value = os.environ.get(self._env)
        self._value = value.encode() if value else None

    def require(self, request: Request) -> None:
        if self._value is None:
            raise PermissionDeniedError(
                f"The admin API is disabled: set {self._env} in the gateway's environment to enable it.",
                code="admin_disabled",
            )
        token = bearer_token(request).encode()
        if not hmac.compare_digest(token, self._value):
            raise AuthenticationError("The admin API needs the master key.", code="invalid_master_key")
