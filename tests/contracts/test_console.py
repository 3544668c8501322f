"""The ``apex`` command is assembled from the commands each package registers (entry points)."""

from __future__ import annotations

import subprocess
import sys

import typer
from typer.testing import CliRunner

from contracts.console import ENTRY_POINT_GROUP, build_app


def _command_names(app: typer.Typer) -> set[str]:
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    return names | {g.name or "" for g in app.registered_groups}


def test_every_package_registers_its_commands():
    names = _command_names(build_app())
    assert {"gateway", "init", "keys"} <= names  # gateway.commands
    assert {"demo", "stop"} <= names  # sandbox.commands
    assert {"invoices", "proof"} <= names  # dagster_project.commands


def test_help_lists_the_registered_commands():
    res = CliRunner().invoke(build_app(), ["--help"])
    assert res.exit_code == 0
    for name in ("gateway", "keys", "demo", "invoices", "proof"):
        assert name in res.output


def test_apex_gateway_help_imports_no_dagster_dbt_or_streamlit():
    code = (
        "import sys\n"
        "from contracts.console import app\n"
        "try:\n"
        "    app(['gateway', '--help'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "heavy = ('dagster', 'dagster_dbt', 'dbt', 'streamlit', 'stripe', 'lancedb', 'polars')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Run the gateway" in out
    assert out.strip().splitlines()[-1] == "[]"


def test_the_entry_point_group_is_what_pyproject_declares():
    import importlib.metadata

    declared = {e.value for e in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert declared == {
        "gateway.commands:register",
        "sandbox.commands:register",
        "dagster_project.commands:register",
    }
