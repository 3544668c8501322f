"""Reading ``apex.yaml`` + ``APEX_*`` environment variables into a settings model: the one place that does.

Sources, later ones win: built-in defaults → ``apex.yaml`` (path from ``--config`` or ``APEX_CONFIG``) →
``APEX_*`` environment variables, where ``__`` separates nesting levels (``APEX_GATEWAY__PORT=9000``,
``APEX_DATA__DIR=/srv/apex``). A bad file fails at start with a message naming the file and the field.
Nothing else in the code base reads ``os.environ`` for Apex settings.

``load_section(Model)`` validates only the sections ``Model`` declares (its other keys are ignored), so a process
loads its own part of the one file: the dashboard is not stopped by a typo in the gateway's section.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from contracts.settings._base import ConfigError

__all__ = ["describe_error", "load_section", "read_raw"]

M = TypeVar("M", bound=BaseModel)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith("APEX_") or "__" not in name:
            continue
        path = name[len("APEX_") :].lower().split("__")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(merged.get(k), Mapping):
            merged[k] = _merge(dict(merged[k]), v)
        else:
            merged[k] = v
    return merged


def describe_error(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  - {loc}: {e['msg']}")
    lines.append("Fix the field(s) above (see README 'Configuration') and start again.")
    return "\n".join(lines)


def read_raw(path: str | Path | None, environ: Mapping[str, str] | None, default_text: str) -> dict[str, Any]:
    """The merged raw mapping (file or ``default_text``, then the environment) with ``source`` set."""
    env = os.environ if environ is None else environ
    chosen = path or env.get("APEX_CONFIG")
    if chosen is None and Path("apex.yaml").exists():
        chosen = "apex.yaml"
    if chosen is None:
        raw: Any = yaml.safe_load(default_text)
        source = "<built-in defaults>"
    else:
        file = Path(chosen)
        source = str(file)
        if not file.is_file():
            raise ConfigError(f"{file}: config file not found. Create it (`apex init`) or pass --config PATH.")
        try:
            raw = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{file}: the top level must be a mapping of sections (gateway:, providers:, ...)")
    raw = _merge(raw, _env_overrides(env))
    raw["source"] = source
    return raw


def load_section(model: type[M], path: str | Path | None, environ: Mapping[str, str] | None, default_text: str) -> M:
    """Validate the sections ``model`` declares; a bad one raises ``ConfigError`` naming the file and field."""
    raw = read_raw(path, environ, default_text)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_error(exc, raw["source"])) from exc
