"""Virtual API keys and team budgets: the records (``records``), their SQLite tables (``schema``) and the store
with the request path's cached lookups (``store``)."""

from __future__ import annotations

from gateway.keys.records import ApiKey, Team, hash_key
from gateway.keys.store import DEFAULT_GRACE_SECONDS, KeyStore

__all__ = ["DEFAULT_GRACE_SECONDS", "ApiKey", "KeyStore", "Team", "hash_key"]
