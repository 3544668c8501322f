"""The ``apex`` command: run the gateway, manage keys, run the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gateway.config import DEFAULT_CONFIG_TEXT, ConfigError, Settings, load_settings

app = typer.Typer(help="Apex: cut LLM spend and prove the savings.", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="Create, list, rotate and revoke virtual API keys; set team budgets.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
invoices_app = typer.Typer(help="Export invoices and push them to Stripe (idempotent).", no_args_is_help=True)
app.add_typer(invoices_app, name="invoices")
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


BudgetOpt = Annotated[float | None, typer.Option(help="Spend limit in USD per period; calls beyond it get 429.")]
PeriodOpt = Annotated[str, typer.Option(help="Budget period: daily, weekly, monthly (UTC) or total.")]
RpmOpt = Annotated[int | None, typer.Option(help="Requests per minute.")]
TpmOpt = Annotated[int | None, typer.Option(help="Tokens per minute (prompt + max_tokens at admission).")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[red]{message}[/red]")
    return typer.Exit(code)


_AUTO_ROUTE_HELP = "Let the learned routing policy serve this key's strong-model requests with the cheap model."
SemanticOpt = Annotated[
    str | None,
    typer.Option(help="Semantic cache for this key: on (serve verified matches), shadow (log would-be hits), off."),
]
CompressOpt = Annotated[bool | None, typer.Option("--compress/--no-compress", help="Compress this key's prompts.")]
AutoRouteOpt = Annotated[bool, typer.Option("--auto-route/--no-auto-route", help=_AUTO_ROUTE_HELP)]


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A label for the key (e.g. the app using it).")],
    customer: Annotated[str, typer.Option(help="Customer (tenant) the spend is attributed to.")] = "default",
    team: Annotated[str | None, typer.Option(help="Team within the customer.")] = None,
    budget_usd: BudgetOpt = None,
    budget_period: PeriodOpt = "total",
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Opt the key in to response caching.")] = False,
    semantic_cache: SemanticOpt = None,
    compress: CompressOpt = None,
    auto_route: AutoRouteOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Create a key. The key is printed once; only its hash is stored."""
    store = _keystore(_settings(config))
    try:
        key, plain = store.create(
            name,
            customer_id=customer,
            team_id=team,
            budget_usd=budget_usd,
            budget_period=budget_period,
            rpm=rpm,
            tpm=tpm,
            cache_enabled=cache,
            semantic_cache=semantic_cache,
            compression=compress,
            auto_route=auto_route,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
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
    table = Table("key_id", "name", "hint", "customer", "team", "budget_usd", "rpm/tpm", "spent_usd", "status")
    for k in keys:
        table.add_row(
            k.key_id,
            k.name,
            k.key_hint,
            k.customer_id,
            k.team_id or "",
            "" if k.budget_usd is None else f"{k.budget_usd:.2f}/{k.budget_period}",
            f"{k.rpm or '-'}/{k.tpm or '-'}",
            f"{k.spent_usd:.6f}",
            "active" if k.active else f"revoked {k.revoked_at}",
        )
    Console().print(table)


@keys_app.command("update")
def keys_update(
    key_id: str,
    budget_usd: BudgetOpt = None,
    budget_period: Annotated[str | None, typer.Option(help="daily, weekly, monthly or total.")] = None,
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    cache: Annotated[bool | None, typer.Option("--cache/--no-cache", help="Response caching opt-in.")] = None,
    semantic_cache: SemanticOpt = None,
    compress: CompressOpt = None,
    auto_route: Annotated[bool | None, typer.Option("--auto-route/--no-auto-route", help=_AUTO_ROUTE_HELP)] = None,
    clear: Annotated[
        list[str] | None, typer.Option(help="Remove a limit: budget_usd, rpm or tpm (repeatable).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Change a key's budget, period, rate limits or cache opt-in (options left out are kept)."""
    given = dict(
        budget_usd=budget_usd,
        budget_period=budget_period,
        rpm=rpm,
        tpm=tpm,
        cache_enabled=cache,
        semantic_cache=semantic_cache,
        compression=compress,
        auto_route=auto_route,
    )
    changes: dict[str, object] = {k: v for k, v in given.items() if v is not None}
    for name in clear or ():
        if name not in ("budget_usd", "rpm", "tpm"):
            raise _fail(f"--clear takes budget_usd, rpm or tpm, not {name!r}")
        changes[name] = None
    try:
        key = _keystore(_settings(config)).update(key_id, **changes)  # type: ignore[arg-type]
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if key is None:
        raise _fail(f"no key {key_id} (see `apex keys list`)", 1)
    console.print(f"updated {key_id}")


@keys_app.command("rotate")
def keys_rotate(
    key_id: str,
    grace_seconds: Annotated[float, typer.Option(help="How long the old key keeps working.")] = 24 * 3600.0,
    config: ConfigOpt = None,
) -> None:
    """Issue a new key for KEY_ID; the old one works for --grace-seconds more. The new key is printed once."""
    try:
        rotated = _keystore(_settings(config)).rotate(key_id, grace_seconds=grace_seconds)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if rotated is None:
        raise _fail(f"no active key {key_id} (see `apex keys list`)", 1)
    _, plain, _ = rotated
    console.print(f"rotated {key_id}; the old key works for {grace_seconds:g} s more. Store the new key now:")
    print(plain)


@keys_app.command("revoke")
def keys_revoke(key_id: str, config: ConfigOpt = None) -> None:
    """Revoke a key (gateways stop accepting it within gateway.key_cache_seconds)."""
    if not _keystore(_settings(config)).revoke(key_id):
        raise _fail(f"no active key {key_id} (see `apex keys list`)", 1)
    console.print(f"revoked {key_id}")


@keys_app.command("team")
def keys_team(
    team_id: str,
    budget_usd: BudgetOpt = None,
    period: PeriodOpt = "total",
    config: ConfigOpt = None,
) -> None:
    """Set a team's budget, shared by all of the team's keys (no --budget-usd: no limit)."""
    try:
        _keystore(_settings(config)).set_team(team_id, budget_usd=budget_usd, period=period)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(f"team {team_id}: budget {'none' if budget_usd is None else f'${budget_usd:.2f}'} ({period})")


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


BillingPeriodOpt = Annotated[str, typer.Option("--period", help="Billing month, YYYY-MM.")]


@invoices_app.command("export")
def invoices_export(
    period: BillingPeriodOpt,
    fmt: Annotated[str, typer.Option("--format", help="csv, parquet or json.")] = "csv",
    out: Annotated[Path | None, typer.Option(help="Output directory (default: <data dir>/exports/<period>).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Write the period's invoices, invoice lines and proof rows from the dbt billing marts."""
    from dagster_project.billing.commands import run_export

    raise typer.Exit(run_export(_settings(config), period, fmt, out, console))


@invoices_app.command("push")
def invoices_push(period: BillingPeriodOpt, config: ConfigOpt = None) -> None:
    """Push the period's ready invoices to Stripe; a dry run (the plan) without STRIPE_API_KEY."""
    from dagster_project.billing.commands import run_push

    raise typer.Exit(run_push(_settings(config), period, console))


@app.command()
def proof(line_id: Annotated[str, typer.Argument(help="invoice_lines.line_id")], config: ConfigOpt = None) -> None:
    """Recompute an invoice line from the raw event files and say MATCH or MISMATCH (exit 0 / 1)."""
    from dagster_project.billing.commands import run_proof

    raise typer.Exit(run_proof(_settings(config), line_id, console))


if __name__ == "__main__":
    app()
