"""The gateway's ``apex`` commands: ``apex gateway``, ``apex init`` and ``apex keys ...``.

Registered through the ``apex.commands`` entry point (``contracts.console``); the server and the key store are
imported inside the commands, so listing or parsing them imports neither.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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


def _audit(settings: Settings, action: str, target_type: str, target_id: str, changes: dict[str, Any]) -> None:
    """One audit row for an applied action, the actor ``cli:<os user>``."""
    from gateway.audit import AuditLog, cli_actor

    audit = AuditLog.for_data_dir(settings.data.dir, f"cli-{os.getpid()}")
    audit.record(cli_actor(), action, target_type, target_id, changes)


def _expires_at(expires_in: float | None) -> float | None:
    if expires_in is None:
        return None
    if not 0 < expires_in <= 100 * 365 * 86400:
        raise fail("--expires-in must be a positive number of seconds (at most 100 years)")
    return time.time() + expires_in


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


_CLEARABLE = ("budget_usd", "rpm", "tpm", "models", "endpoints", "expires_at")
_AUTO_ROUTE_HELP = "Let the learned routing policy serve this key's strong-model requests with the cheap model."
SemanticOpt = Annotated[
    str | None,
    typer.Option(help="Semantic cache for this key: on (serve verified matches), shadow (log would-be hits), off."),
]
CompressOpt = Annotated[bool | None, typer.Option("--compress/--no-compress", help="Compress this key's prompts.")]
AutoRouteOpt = Annotated[bool, typer.Option("--auto-route/--no-auto-route", help=_AUTO_ROUTE_HELP)]
ModelsOpt = Annotated[
    str | None, typer.Option(help="Allow only these models, comma-separated (NAME[,NAME...]); others get 403.")
]
EndpointsOpt = Annotated[
    str | None,
    typer.Option(help="Allow only these endpoints, comma-separated: chat, messages, embeddings (or their paths)."),
]
ExpiresInOpt = Annotated[float | None, typer.Option(help="The key stops working this many seconds from now (401).")]


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
    models: ModelsOpt = None,
    endpoints: EndpointsOpt = None,
    expires_in: ExpiresInOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create a key. The key is printed once; only its hash is stored."""
    from gateway.audit import key_changes
    from gateway.keys.records import endpoint_names, model_names

    settings = _settings(config)
    store = _keystore(settings)
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
            models=model_names(models),
            endpoints=endpoint_names(endpoints),
            expires_at=_expires_at(expires_in),
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    _audit(settings, "key.created", "key", key.key_id, key_changes(None, key))
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
        import json

        from gateway.keys.records import key_json

        for k in keys:
            print(json.dumps(key_json(k)))
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
            _status(k.revoked_at, k.expires_at),
        )
    Console().print(table)


def _status(revoked_at: str | None, expires_at: float | None) -> str:
    if revoked_at is not None:
        return f"revoked {revoked_at}"
    if expires_at is None:
        return "active"
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(expires_at, UTC).isoformat(timespec="seconds")
    return f"expired {when}" if expires_at <= time.time() else f"active until {when}"


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
    models: ModelsOpt = None,
    endpoints: EndpointsOpt = None,
    expires_in: ExpiresInOpt = None,
    clear: Annotated[
        list[str] | None,
        typer.Option(help=f"Remove a limit: {', '.join(_CLEARABLE)} (repeatable)."),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Change a key's budget, period, rate limits, cache opt-in, allowed models and endpoints or expiry (options
    left out are kept)."""
    from gateway.audit import key_changes

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
    changes.update(_cleared_and_lists(clear, _CLEARABLE, models, endpoints))
    settings = _settings(config)
    store = _keystore(settings)
    try:
        if expires_in is not None:
            changes["expires_at"] = _expires_at(expires_in)
        old = store.get(key_id)
        key = store.update(key_id, **changes)  # type: ignore[arg-type]
    except ValueError as exc:
        raise fail(str(exc)) from None
    if key is None or old is None:
        raise fail(f"no key {key_id} (see `apex keys list`)", 1)
    diff = key_changes(old, key)
    if diff:
        _audit(settings, "key.updated", "key", key_id, diff)
    console.print(f"updated {key_id}")


@keys_app.command("rotate")
def keys_rotate(
    key_id: str,
    grace_seconds: Annotated[float, typer.Option(help="How long the old key keeps working.")] = 24 * 3600.0,
    config: ConfigOpt = None,
) -> None:
    """Issue a new key for KEY_ID; the old one works for --grace-seconds more. The new key is printed once."""
    settings = _settings(config)
    try:
        rotated = _keystore(settings).rotate(key_id, grace_seconds=grace_seconds)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if rotated is None:
        raise fail(f"no active key {key_id} (see `apex keys list`)", 1)
    _, plain, old_expires_at = rotated
    _audit(settings, "key.rotated", "key", key_id, {"previous_secret_expires_at": [None, old_expires_at]})
    console.print(f"rotated {key_id}; the old key works for {grace_seconds:g} s more. Store the new key now:")
    print(plain)


@keys_app.command("revoke")
def keys_revoke(key_id: str, config: ConfigOpt = None) -> None:
    """Revoke a key (gateways stop accepting it within gateway.key_cache_seconds)."""
    settings = _settings(config)
    store = _keystore(settings)
    if not store.revoke(key_id):
        raise fail(f"no active key {key_id} (see `apex keys list`)", 1)
    key = store.get(key_id)
    _audit(settings, "key.revoked", "key", key_id, {"revoked_at": [None, key.revoked_at if key else None]})
    console.print(f"revoked {key_id}")


@keys_app.command("team")
def keys_team(
    team_id: str,
    budget_usd: BudgetOpt = None,
    period: PeriodOpt = "total",
    models: ModelsOpt = None,
    endpoints: EndpointsOpt = None,
    clear: Annotated[
        list[str] | None, typer.Option(help="Allow any model or endpoint again: models, endpoints (repeatable).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Set a team's budget, shared by all of the team's keys (no --budget-usd: no limit), and the models and
    endpoints its keys may use (left out: kept)."""
    from gateway.audit import team_changes

    lists = _cleared_and_lists(clear, ("models", "endpoints"), models, endpoints)
    settings = _settings(config)
    store = _keystore(settings)
    try:
        old = store.get_team(team_id)
        team = store.set_team(team_id, budget_usd=budget_usd, period=period, **lists)
    except ValueError as exc:
        raise fail(str(exc)) from None
    diff = team_changes(old, team)
    if diff:
        _audit(settings, "team.updated", "team", team_id, diff)
    console.print(f"team {team_id}: budget {'none' if budget_usd is None else f'${budget_usd:.2f}'} ({period})")


def _cleared_and_lists(
    clear: list[str] | None, clearable: tuple[str, ...], models: str | None, endpoints: str | None
) -> dict[str, Any]:
    """``--clear`` names (each one of ``clearable``) as None, then the parsed ``--models`` / ``--endpoints``."""
    from gateway.keys.records import endpoint_names, model_names

    out: dict[str, Any] = {}
    for name in clear or ():
        if name not in clearable:
            raise fail(f"--clear takes {', '.join(clearable)}, not {name!r}")
        out[name] = None
    try:
        if models is not None:
            out["models"] = model_names(models)
        if endpoints is not None:
            out["endpoints"] = endpoint_names(endpoints)
    except ValueError as exc:
        raise fail(str(exc)) from None
    return out


def register(app: typer.Typer) -> None:
    """Add the gateway's commands to the ``apex`` app."""
    app.command()(gateway)
    app.command()(init)
    app.add_typer(keys_app, name="keys")
