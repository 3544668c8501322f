"""Policy files: how optimizer assets hand what they learned to running gateways.

A policy file is one JSON object written by an optimizer asset (Dagster) and hot-reloaded by every gateway that
reads it. The envelope is the contract; the body belongs to the optimizer that owns ``kind``:

  kind            *required* string. What the file is, e.g. ``ROUTING_POLICY_KIND`` (``optimizers.routing``).
  schema          *required* int. The body's version; a reader refuses a version it does not know, by name.
  policy_version  *required* string. Which training produced it (recorded on each event it decides).
  ...             the owner's fields (``optimizers/routing/policy.py`` documents the routing policy's).

Files are written atomically (a temporary file in the same directory, fsync, rename), so a gateway that reloads
mid-write sees the old policy or the new one, never half of one. ``<data dir>/policies/`` is the default home.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import orjson

__all__ = ["ROUTING_POLICY_KIND", "ROUTING_POLICY_SCHEMA", "PolicyFileError", "read_policy_file", "write_policy_file"]

ROUTING_POLICY_KIND = "apex.routing_policy"
ROUTING_POLICY_SCHEMA = 1


class PolicyFileError(ValueError):
    """A policy file cannot be used; the message names the file and the field."""


def read_policy_file(path: str | Path, what: str = "policy") -> dict[str, Any]:
    """The file's JSON object, or ``PolicyFileError`` saying what is wrong with it (missing, not JSON, not an
    object). Checking ``kind``/``schema`` and the body is the owner's job."""
    path = Path(path)
    try:
        raw = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise PolicyFileError(f"{what} {path}: file does not exist") from None
    except orjson.JSONDecodeError as exc:
        raise PolicyFileError(f"{what} {path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise PolicyFileError(f"{what} {path}: field '<root>' must be an object")
    return raw


def write_policy_file(document: dict[str, Any], path: str | Path) -> Path:
    """Write ``document`` to ``path`` atomically, readable by a gateway running as another user."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the gateway may run as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
