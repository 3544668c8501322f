"""Run the real dbt project against a temp warehouse — shared by the analytics and billing test suites."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from dagster_project.assets.dbt_marts import DBT_PROJECT_DIR
from dagster_project.resources import dbt_executable


def run_dbt(dbt_env: Mapping[str, str], tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``dbt <args>`` with the paths in ``dbt_env`` (APEX_EVENTS_DIR, APEX_WAREHOUSE, ...); asserts success."""
    result = subprocess.run(
        [dbt_executable(), *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_TARGET_PATH": str(tmp / "dbt_target"),
            "DBT_LOG_PATH": str(tmp / "dbt_logs"),
            **dbt_env,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-6000:]
    assert "ERROR=0" in result.stdout
    return result
