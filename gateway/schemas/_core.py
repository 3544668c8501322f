"""The building blocks every request schema uses: typed checks that name the offending field by its path.

A check raises ``Violation`` (path, problem, code); each schema's entry point turns it into one
``InvalidRequestError`` whose ``param`` is the path in its wire format's spelling (``messages[2].content[0].text``
for OpenAI, ``messages.2.content.0.text`` for Anthropic). Paths are tuples, formatted only when a check fails, so
a valid request pays for ``isinstance`` calls and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from gateway.errors import InvalidRequestError

__all__ = [
    "INT64_MAX",
    "JSON_INT_MAX",
    "Path",
    "Violation",
    "anthropic_error",
    "fail",
    "kind_of",
    "need_bool",
    "need_enum",
    "need_int",
    "need_list",
    "need_number",
    "need_object",
    "need_str",
    "need_str_list",
    "openai_error",
    "optional_str",
    "short",
]

Path = tuple[str | int, ...]

JSON_INT_MAX = 2**53
"""The largest integer every JSON reader holds exactly: the default bound of a count or a limit."""
INT64_MAX = 2**63 - 1
"""SQLite's (and Redis's) integer range: a value above it cannot be stored."""


class Violation(Exception):
    """A field breaks its schema: where (``path``), what is wrong (``problem``), and the error code to send."""

    __slots__ = ("code", "path", "problem")

    def __init__(self, path: Path, problem: str, code: str) -> None:
        super().__init__(problem)
        self.path = path
        self.problem = problem
        self.code = code


def fail(path: Path, problem: str, code: str = "invalid_type") -> NoReturn:
    raise Violation(path, problem, code)


_KINDS = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def kind_of(value: Any) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def _openai_param(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _anthropic_param(path: Path) -> str:
    return ".".join(str(part) for part in path)


def openai_error(v: Violation) -> InvalidRequestError:
    param = _openai_param(v.path)
    return InvalidRequestError(f"Invalid '{param}': {v.problem}.", param=param, code=v.code)


def check_openai_body(
    body: dict[str, Any], fields: Mapping[str, Callable[[Any, tuple[Any, ...]], Any]], required: str
) -> tuple[Any, Any]:
    """Check each known field of an OpenAI-shaped body (unknown ones pass), then that ``model`` and ``required``
    are there; ``(model, body[required])``. Raises ``InvalidRequestError`` naming the first bad field."""
    try:
        for name, value in body.items():
            check = fields.get(name)
            if check is not None and value is not None:
                check(value, (name,))
    except Violation as v:
        raise openai_error(v) from None
    model = body.get("model")
    if model is None:
        raise InvalidRequestError(
            "you must provide a model parameter", param="model", code="missing_required_parameter"
        )
    value = body.get(required)
    if value is None:
        raise InvalidRequestError(
            f"Missing required parameter: '{required}'.", param=required, code="missing_required_parameter"
        )
    return model, value


def anthropic_error(v: Violation) -> InvalidRequestError:
    """Anthropic's error body has no ``param``: the message leads with the path, as Anthropic's own do."""
    param = _anthropic_param(v.path)
    return InvalidRequestError(f"{param}: {v.problem}", param=param, code=v.code)


# -- typed checks: each returns the value (narrowed) or raises Violation --------------------------------------------


def need_str(value: Any, path: Path, *, non_empty: bool = False) -> str:
    if not isinstance(value, str):
        fail(path, f"expected a string, got {kind_of(value)}")
    if non_empty and not value:
        fail(path, "expected a non-empty string", "invalid_value")
    return value


def optional_str(obj: dict[str, Any], name: str, path: Path) -> None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        fail((*path, name), f"expected a string, got {kind_of(value)}")


def need_bool(value: Any, path: Path) -> bool:
    if not isinstance(value, bool):
        fail(path, f"expected a boolean, got {kind_of(value)}")
    return value


def need_int(value: Any, path: Path, lo: int = 0, hi: int = JSON_INT_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        fail(path, f"expected an integer, got {kind_of(value)}")
    if not lo <= value <= hi:
        fail(path, f"expected an integer from {lo} to {hi}, got {value}", "invalid_value")
    return value


def need_number(value: Any, path: Path, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail(path, f"expected a number, got {kind_of(value)}")
    if not lo <= value <= hi:
        fail(path, f"expected a number from {lo:g} to {hi:g}, got {value}", "invalid_value")
    return value


def need_object(value: Any, path: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        fail(path, f"expected an object, got {kind_of(value)}")
    return value


def need_list(value: Any, path: Path, *, non_empty: bool = False) -> list[Any]:
    if not isinstance(value, list):
        fail(path, f"expected an array, got {kind_of(value)}")
    if non_empty and not value:
        fail(path, "expected a non-empty array", "invalid_value")
    return value


def need_str_list(value: Any, path: Path) -> list[str]:
    items = need_list(value, path)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            fail((*path, i), f"expected a string, got {kind_of(item)}")
    return items


def need_enum(value: Any, path: Path, allowed: frozenset[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        fail(path, f"expected one of {sorted(allowed)}, got {short(value)}", "invalid_value")
    return value


def short(value: Any) -> str:
    """A value quoted in an error message, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
