"""The admin API's body bounds: every field typed and bounded before it reaches the key store.

Integers stay within SQLite's 64-bit range (a larger one was an ``OverflowError``, a 500), amounts and times are
finite and bounded, names and lists have a length cap. Unknown fields are the handler's to refuse (it knows which
ones each route takes); these functions check the known ones present.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.schemas._core import (
    INT64_MAX,
    Path,
    Violation,
    fail,
    kind_of,
    need_bool,
    need_int,
    need_list,
    need_number,
    need_str,
    openai_error,
)

__all__ = ["validate_key_fields", "validate_rotate", "validate_team"]

MAX_NAME_CHARS = 256
MAX_LIST_ITEMS = 1_000
MAX_USD = 1e15
MAX_SECONDS = 100 * 365 * 86400.0
"""A century: the longest expiry or grace period an admin can set."""
MAX_UNIX_TIME = 1e11


def _name(value: Any, path: Path) -> None:
    text = need_str(value, path, non_empty=True)
    if len(text) > MAX_NAME_CHARS:
        fail(path, f"expected at most {MAX_NAME_CHARS} characters, got {len(text)}", "invalid_value")


def _names(value: Any, path: Path) -> None:
    items = need_list(value, path)
    if len(items) > MAX_LIST_ITEMS:
        fail(path, f"expected at most {MAX_LIST_ITEMS} items, got {len(items)}", "invalid_value")
    for i, item in enumerate(items):
        _name(item, (*path, i))


def _count(value: Any, path: Path) -> None:
    need_int(value, path, 1, INT64_MAX)


def _usd(value: Any, path: Path) -> None:
    need_number(value, path, 0, MAX_USD)


def _seconds(value: Any, path: Path) -> None:
    need_number(value, path, 0, MAX_SECONDS)


def _positive_seconds(value: Any, path: Path) -> None:
    if need_number(value, path, 0, MAX_SECONDS) == 0:
        fail(path, "expected a positive number of seconds", "invalid_value")


def _unix_time(value: Any, path: Path) -> None:
    need_number(value, path, 0, MAX_UNIX_TIME)


Check = Callable[[Any, Path], Any]
# name → (check, may be null)
_KEY_FIELDS: dict[str, tuple[Check, bool]] = {
    "name": (_name, False),
    "customer_id": (_name, False),
    "team_id": (_name, True),
    "budget_usd": (_usd, True),
    "budget_period": (_name, False),
    "rpm": (_count, True),
    "tpm": (_count, True),
    "cache": (need_bool, False),
    "semantic_cache": (_name, True),
    "compression": (need_bool, True),
    "auto_route": (need_bool, False),
    "models": (_names, True),
    "endpoints": (_names, True),
    "expires_at": (_unix_time, True),
    "expires_in": (_positive_seconds, False),
}
_TEAM_FIELDS: dict[str, tuple[Check, bool]] = {
    "budget_usd": (_usd, True),
    "period": (_name, False),
    "models": (_names, True),
    "endpoints": (_names, True),
}
_ROTATE_FIELDS: dict[str, tuple[Check, bool]] = {"grace_seconds": (_seconds, False)}


def _validate(body: dict[str, Any], fields: dict[str, tuple[Check, bool]]) -> None:
    try:
        for name, value in body.items():
            spec = fields.get(name)
            if spec is None:
                continue
            check, nullable = spec
            if value is None:
                if not nullable:
                    fail((name,), f"expected a value, got {kind_of(value)}")
                continue
            check(value, (name,))
    except Violation as v:
        raise openai_error(v) from None


def validate_key_fields(body: dict[str, Any]) -> None:
    """``POST /admin/keys`` and ``PATCH /admin/keys/{id}``: the key fields present are typed and bounded."""
    _validate(body, _KEY_FIELDS)


def validate_team(body: dict[str, Any]) -> None:
    """``PUT /admin/teams/{id}``."""
    _validate(body, _TEAM_FIELDS)


def validate_rotate(body: dict[str, Any]) -> None:
    """``POST /admin/keys/{id}/rotate``."""
    _validate(body, _ROTATE_FIELDS)
