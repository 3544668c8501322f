"""Budgets and rate limits: reserve a call's worst-case cost before dispatch, settle to the actual cost after.

``Limiter`` (``limiter.py``) prices and admits calls; it depends only on the ``LimitStore`` interface
(``base.py``), implemented by ``SqliteLimitStore`` (one process, in memory, persisted to SQLite) and
``RedisLimitStore`` (several processes, Lua scripts). ``limits.backend`` in the settings picks one.
"""

from gateway.limits.base import AdmissionRequest, BudgetLine, LimitStore, Reservation
from gateway.limits.limiter import Limiter, build_store

__all__ = ["AdmissionRequest", "BudgetLine", "LimitStore", "Limiter", "Reservation", "build_store"]
