"""Who changed which key or team, and how: the admin API and ``apex keys`` write one audit row per action.

Rows follow ``contracts/audit.py`` (Parquet under ``<data dir>/audit/date=YYYY-MM-DD/``) and reach the marts as
``fct_admin_audit``. The actor is ``admin:<fingerprint>`` (the first 8 hex digits of the SHA-256 of the master
key the request presented) or ``cli:<os user>``; ``changes`` holds ``{field: [old, new]}`` of the record's
settings. Neither ever holds a secret: the key's hash and hint are left out, and the master key only as a
fingerprint.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from contracts.audit import AuditRecord, audit_dir_for, write_audit_records
from gateway.keys.records import ApiKey, Team, key_json, team_json

__all__ = ["AuditLog", "cli_actor", "key_changes", "master_key_actor", "team_changes"]

log = logging.getLogger("apex.gateway")

# what a key's audit row never carries: its secret's hint, and counters that are not settings
_NOT_AUDITED = frozenset({"key_id", "key_hint", "spent_usd", "created_at"})


def master_key_actor(presented_key: str) -> str:
    return "admin:" + hashlib.sha256(presented_key.encode()).hexdigest()[:8]


def cli_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name for this uid (containers)
        user = f"uid{os.getuid()}"
    return f"cli:{user}"


def _diff(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, list[Any]]:
    before = old or {}
    return {
        name: [before.get(name), value]
        for name, value in new.items()
        if name not in _NOT_AUDITED and (old is None or before.get(name) != value) and (old or value is not None)
    }


def key_changes(old: ApiKey | None, new: ApiKey) -> dict[str, list[Any]]:
    """The key's settings that differ (``old`` None: every setting it was created with)."""
    return _diff(None if old is None else key_json(old), key_json(new))


def team_changes(old: Team | None, new: Team) -> dict[str, list[Any]]:
    return _diff(None if old is None else team_json(old), team_json(new))


@dataclass(frozen=True, slots=True)
class AuditLog:
    """Appends audit rows to ``<data dir>/audit`` as ``writer_id``."""

    audit_dir: Path
    writer_id: str

    @classmethod
    def for_data_dir(cls, data_dir: Path, writer_id: str) -> AuditLog:
        return cls(audit_dir_for(data_dir), writer_id)

    def record(self, actor: str, action: str, target_type: str, target_id: str, changes: dict[str, Any]) -> None:
        """Write one row. The action has already been applied, so a failed write is logged (with the row, which
        holds no secret) rather than raised."""
        row = AuditRecord(
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            changes=orjson.dumps(changes, option=orjson.OPT_SORT_KEYS).decode(),
        )
        try:
            write_audit_records(self.audit_dir, [row], writer_id=self.writer_id)
        except OSError:
            log.exception("could not write the audit row %s", row)
