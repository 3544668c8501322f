"""The learned routing policy file, hot-reloaded when the ``routing_policy`` asset writes a new one."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.levers.base import freeze_imports

if TYPE_CHECKING:
    from optimizers.routing import RoutingPolicy

__all__ = ["PolicyHolder"]

log = logging.getLogger("apex.gateway")


class PolicyHolder:
    """The routing policy file, reloaded when it changes (checked every ``reload_seconds``; no restart).

    A file that fails to load keeps the previous policy in force and says why in ``error``; with no policy at
    all, auto-routed calls go to the strong model (the safe choice) and say so."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.policy: RoutingPolicy | None = None
        self.error: str | None = None
        self._stamp: tuple[int, int] | None = None

    def refresh(self) -> bool:
        """Load the file if it changed since the last look; True when a new policy took effect."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            from optimizers.routing import RoutingPolicy

            policy = RoutingPolicy.load(self.path)
            freeze_imports()
        except Exception as exc:  # any bad file: keep serving with the last good policy
            self.error = f"{self.path}: {exc}"
            log.error("routing policy not loaded, keeping %s: %s", self.version or "no policy", self.error)
            return False
        self.policy, self.error = policy, None
        log.info("routing policy %s loaded from %s", policy.policy_version, self.path)
        return True

    @property
    def version(self) -> str | None:
        return self.policy.policy_version if self.policy is not None else None
