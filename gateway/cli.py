"""The ``apex`` command: run the gateway, manage keys, run the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gateway.config import DEFAULT_CONFIG_TEXT, ConfigError, Settings, load_settings

app = typer.Typer(help="Apex: cut LLM spend and prove the savings.", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="Create, list and revoke virtual API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="apex.yaml to use (default: $APEX_CONFIG or ./apex.yaml)."),
]


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _keystore(settings: Settings):  # type: ignore[no-untyped-def]
    from gateway.keys import KeyStore

    return KeyStore(settings.data.gateway_db_path)


@app.command()
def gateway(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default from config).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from config).")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Run the gateway (OpenAI-compatible API on /v1). Stop with Ctrl-C or SIGTERM; events are flushed."""
    from gateway.server import serve

    serve(_settings(config), host=host, port=port, log_level=log_level)


@app.command()
def init(path: Annotated[Path, typer.Argument()] = Path("apex.yaml")) -> None:
    """Write a starter apex.yaml."""
    if path.exists():
        console.print(f"[yellow]{path} already exists; not overwriting.[/yellow]")
        raise typer.Exit(1)
    path.write_text(DEFAULT_CONFIG_TEXT)
    console.print(f"wrote {path}")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A label for the key (e.g. the app using it).")],
    customer: Annotated[str, typer.Option(help="Customer (tenant) the spend is attributed to.")] = "default",
    team: Annotated[str | None, typer.Option(help="Team within the customer.")] = None,
    budget_usd: Annotated[float | None, typer.Option(help="Spend limit in USD; calls beyond it get 429.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Create a key. The key is printed once; only its hash is stored."""
    store = _keystore(_settings(config))
    try:
        key, plain = store.create(name, customer_id=customer, team_id=team, budget_usd=budget_usd)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(
        f"created {key.key_id} ({key.name}) for customer {key.customer_id}; store the key now, it is not shown again:"
    )
    print(plain)


@keys_app.command("list")
def keys_list(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line, for scripts.")] = False,
) -> None:
    """List keys (hints only, never the keys)."""
    keys = _keystore(_settings(config)).list()
    if as_json:
        import dataclasses
        import json

        for k in keys:
            print(json.dumps(dataclasses.asdict(k)))
        return
    table = Table("key_id", "name", "hint", "customer", "team", "budget_usd", "spent_usd", "status")
    for k in keys:
        table.add_row(
            k.key_id,
            k.name,
            k.key_hint,
            k.customer_id,
            k.team_id or "",
            "" if k.budget_usd is None else f"{k.budget_usd:.2f}",
            f"{k.spent_usd:.6f}",
            "active" if k.active else f"revoked {k.revoked_at}",
        )
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, config: ConfigOpt = None) -> None:
    """Revoke a key (gateways stop accepting it within gateway.key_cache_seconds)."""
    if not _keystore(_settings(config)).revoke(key_id):
        console.print(f"[red]no active key {key_id}[/red] (see `apex keys list`)")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


@app.command()
def demo(
    config: ConfigOpt = None,
    requests: Annotated[int, typer.Option(help="Calls in the simulated workload.")] = 400,
    serve: Annotated[bool, typer.Option(help="Leave dagster dev and the dashboard running afterwards.")] = True,
) -> None:
    """Offline demo: gateway + simulated providers → workload → Dagster/dbt marts → dashboard."""
    from sandbox.demo import run_demo

    raise typer.Exit(run_demo(config, requests=requests, serve=serve))


@app.command()
def stop(config: ConfigOpt = None) -> None:
    """Stop the services the demo left running (dagster dev, dashboard)."""
    from sandbox.services import stop_all

    stopped = stop_all(_settings(config).data.dir)
    console.print(f"stopped {stopped}" if stopped else "nothing was running")


if __name__ == "__main__":
    app()
