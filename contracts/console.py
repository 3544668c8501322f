"""The ``apex`` command: one Typer app to which each package registers its own commands.

A package adds commands by declaring an entry point in the ``apex.commands`` group (``pyproject.toml``) that
names a ``register(app)`` function — the built-in packages (gateway, sandbox, dagster_project) register exactly
as a third-party package would. Registration modules import only Typer and what they need to *declare* their
commands; the work is imported inside each command, so ``apex gateway`` never imports Dagster.

This module also holds what every command shares: the ``--config`` option, the stderr console, and turning a bad
configuration into a clear message and exit code 2.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from contracts.settings import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "ConfigOpt", "app", "build_app", "console", "fail", "main", "settings_or_exit"]

ENTRY_POINT_GROUP = "apex.commands"

console = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="apex.yaml to use (default: $APEX_CONFIG or ./apex.yaml)."),
]

S = TypeVar("S")


def settings_or_exit(loader: Callable[[Path | None, Mapping[str, str] | None], S], config: Path | None) -> S:
    """``loader(config)``, or the configuration error printed and exit code 2."""
    try:
        return loader(config, None)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[red]{message}[/red]")
    return typer.Exit(code)


def build_app() -> typer.Typer:
    """A fresh ``apex`` app with every registered package's commands."""
    root = typer.Typer(help="Apex: cut LLM spend and prove the savings.", no_args_is_help=True, add_completion=False)
    entry_points = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    if not entry_points:
        raise RuntimeError(f"no '{ENTRY_POINT_GROUP}' entry points: install Apex (`make setup`) and try again")
    for entry_point in entry_points:
        register = entry_point.load()
        register(root)
    return root


app = build_app()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
