"""The gateway's ``apex`` commands: ``apex gateway``, ``apex init`` and ``apex keys ...``.

Registered through the ``apex.commands`` entry point (``contracts.console``); the server and the key store are
imported inside the commands, so listing or parsing them imports neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from contracts.console import ConfigOpt, console, fail, settings_or_exit
from contracts.settings import DEFAULT_CONFIG_TEXT, Settings

if TYPE_CHECKING:
    from gateway.keys import KeyStore

__all__ = ["register"]

keys_app = typer.Typer(help="Create, list, rotate and revoke virtual API keys; set team budgets.", no_args_is_help=True)


def _settings(config: Path | None) -> Settings:
    from gateway.settings import load_settings

    return settings_or_exit(load_settings, config)


def _keystore(settings: Settings) -> KeyStore:
    from gateway.keys import KeyStore

    return KeyStore(settings.data.gateway_db_path)


def gateway(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default from config).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from config).")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Run the gateway (OpenAI-compatible API on /v1). Stop with Ctrl-C or SIGTERM; events are flushed."""
    from gateway.server import serve

    serve(_settings(config), host=host, port=port, log_level=log_level)


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
        raise fail(str(exc)) from None
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
            raise fail(f"--clear takes budget_usd, rpm or tpm, not {name!r}")
        changes[name] = None
    try:
        key = _keystore(_settings(config)).update(key_id, **changes)  # type: ignore[arg-type]
    except ValueError as exc:
        raise fail(str(exc)) from None
    if key is None:
        raise fail(f"no key {key_id} (see `apex keys list`)", 1)
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
        raise fail(str(exc)) from None
    if rotated is None:
        raise fail(f"no active key {key_id} (see `apex keys list`)", 1)
    _, plain, _ = rotated
    console.print(f"rotated {key_id}; the old key works for {grace_seconds:g} s more. Store the new key now:")
    print(plain)


@keys_app.command("revoke")
def keys_revoke(key_id: str, config: ConfigOpt = None) -> None:
    """Revoke a key (gateways stop accepting it within gateway.key_cache_seconds)."""
    if not _keystore(_settings(config)).revoke(key_id):
        raise fail(f"no active key {key_id} (see `apex keys list`)", 1)
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
        raise fail(str(exc)) from None
    console.print(f"team {team_id}: budget {'none' if budget_usd is None else f'${budget_usd:.2f}'} ({period})")


def register(app: typer.Typer) -> None:
    """Add the gateway's commands to the ``apex`` app."""
    app.command()(gateway)
    app.command()(init)
    app.add_typer(keys_app, name="keys")
