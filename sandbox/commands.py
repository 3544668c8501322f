"""The sandbox's ``apex`` commands: ``apex demo`` and ``apex stop``."""

from __future__ import annotations

from typing import Annotated

import typer

from contracts.console import ConfigOpt, console, settings_or_exit
from contracts.settings import load_settings

__all__ = ["register"]


def demo(
    config: ConfigOpt = None,
    requests: Annotated[int, typer.Option(help="Calls in the simulated workload.")] = 400,
    serve: Annotated[bool, typer.Option(help="Leave dagster dev and the dashboard running afterwards.")] = True,
) -> None:
    """Offline demo: gateway + simulated providers → workload → Dagster/dbt marts → dashboard."""
    from sandbox.demo import run_demo

    raise typer.Exit(run_demo(config, requests=requests, serve=serve))


def stop(config: ConfigOpt = None) -> None:
    """Stop the services the demo left running (dagster dev, dashboard)."""
    from sandbox.services import stop_all

    stopped = stop_all(settings_or_exit(load_settings, config).data.dir)
    console.print(f"stopped {stopped}" if stopped else "nothing was running")


def register(app: typer.Typer) -> None:
    """Add the sandbox's commands to the ``apex`` app."""
    app.command()(demo)
    app.command()(stop)
