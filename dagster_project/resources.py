"""Where the analytics side reads events and writes the warehouse: a Dagster resource built from settings."""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from contracts.audit import audit_dir_for
from contracts.audit import ensure_schema_file as ensure_audit_schema_file
from contracts.settings import SharedSettings
from contracts.validation_runs import ensure_schema_file as ensure_runs_schema_file
from contracts.validation_runs import runs_dir_for

__all__ = ["ApexDataResource", "dbt_executable"]


class ApexDataResource(dg.ConfigurableResource):
    """Absolute paths of the raw events, the raw validation runs and the DuckDB warehouse."""

    events_dir: str
    warehouse_path: str
    validation_runs_dir: str = ""
    """Empty = ``validation_runs`` beside the events directory (``<data dir>/validation_runs``)."""
    data_dir: str = ""
    """Empty = the events directory's parent."""
    routing_policy_file: str = ""
    """Where the gateway reads the routing policy; empty = ``<data dir>/policies/routing_policy.json``."""

    @classmethod
    def from_settings(cls, settings: SharedSettings) -> ApexDataResource:
        return cls(
            events_dir=str(settings.data.events_path.expanduser().resolve()),
            warehouse_path=str(settings.data.warehouse_path.expanduser().resolve()),
            validation_runs_dir=str(runs_dir_for(settings.data.dir).expanduser().resolve()),
            data_dir=str(settings.data.dir.expanduser().resolve()),
            routing_policy_file=str(settings.routing_policy_path.expanduser().resolve()),
        )

    @property
    def events_path(self) -> Path:
        return Path(self.events_dir)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir) if self.data_dir else self.events_path.parent

    @property
    def policies_path(self) -> Path:
        """Policy files and the tables they are trained from (``<data dir>/policies``)."""
        return self.data_path / "policies"

    @property
    def routing_policy_path(self) -> Path:
        """The policy file the gateway hot-reloads."""
        if self.routing_policy_file:
            return Path(self.routing_policy_file)
        return self.policies_path / "routing_policy.json"

    @property
    def feedback_path(self) -> Path:
        """Graded calls for the routing feedback table (``<data dir>/feedback``)."""
        return self.data_path / "feedback"

    @property
    def audit_path(self) -> Path:
        """The admin audit log the gateway and ``apex keys`` write (``<data dir>/audit``, contracts/audit.py)."""
        return audit_dir_for(self.data_path)

    @property
    def validation_runs_path(self) -> Path:
        return (
            Path(self.validation_runs_dir) if self.validation_runs_dir else self.events_path.parent / "validation_runs"
        )

    def dbt_env(self) -> dict[str, str]:
        """The variables the dbt project reads (``env_var`` in profiles.yml and the source definitions).

        Also makes sure the validation-runs and audit directories have their zero-row schema files: DuckDB's glob
        fails on a directory with no Parquet file, and most installs have no validation run (or admin action) yet.
        """
        ensure_runs_schema_file(self.validation_runs_path)
        ensure_audit_schema_file(self.audit_path)
        return {
            "APEX_EVENTS_DIR": self.events_dir,
            "APEX_WAREHOUSE": self.warehouse_path,
            "APEX_VALIDATION_RUNS_DIR": str(self.validation_runs_path),
            "APEX_AUDIT_DIR": str(self.audit_path),
        }

    @contextmanager
    def dbt_invocation_env(self) -> Iterator[None]:
        """Expose :meth:`dbt_env` to a dbt subprocess started inside the block.

        ``DbtCliResource.cli`` copies ``os.environ`` into the subprocess it starts and takes no ``env``
        argument, so the variables are set for the duration of that call and restored afterwards.
        """
        Path(self.warehouse_path).parent.mkdir(parents=True, exist_ok=True)
        saved = {name: os.environ.get(name) for name in self.dbt_env()}
        os.environ.update(self.dbt_env())
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    @contextmanager
    def warehouse_lock(self, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold the warehouse's writer lock (``<warehouse>.lock``, an flock) for the duration of the block.

        DuckDB lets one process write a database file; two runs building the marts at once (the new-files
        sensor requests one run per day that got files) would fail with a lock error, so they take turns.
        ``on_wait`` is called once with a message when another run holds the lock.
        """
        path = Path(self.warehouse_path + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait(f"waiting for {path}: another run is building the warehouse")
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def dbt_executable() -> str:
    """The ``dbt`` installed next to this interpreter (a venv need not be on PATH), else the one on PATH."""
    sibling = Path(sys.executable).with_name("dbt")
    if sibling.exists():
        return str(sibling)
    found = shutil.which("dbt")
    if found is None:
        raise FileNotFoundError(f"no dbt executable next to {sys.executable} or on PATH; install dbt-duckdb")
    return found
