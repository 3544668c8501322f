"""The gateway process's settings: ``contracts.settings`` plus what only the gateway knows (its provider kinds).

``load_settings`` reads every section like ``contracts.settings.load_settings`` and then checks each provider's
``kind`` against the provider registry and the fields that kind requires, so an unknown kind or a missing
``base_url`` fails at start with a message naming the file and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from contracts.settings import ConfigError, Settings
from contracts.settings import load_settings as load_all_sections
from gateway.providers import check_provider_settings

__all__ = ["check_settings", "load_settings"]


def check_settings(settings: Settings) -> Settings:
    """``settings`` if the gateway can serve them, else ``ConfigError`` naming the file and every bad field."""
    problems = check_provider_settings(settings.providers)
    if problems:
        lines = [f"{settings.source}: invalid configuration", *(f"  - {p}" for p in problems)]
        lines.append("Fix the field(s) above (see README 'Configuration') and start again.")
        raise ConfigError("\n".join(lines))
    return settings


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Every section of ``apex.yaml`` + ``APEX_*``, checked against the gateway's provider registry."""
    return check_settings(load_all_sections(path, environ))
