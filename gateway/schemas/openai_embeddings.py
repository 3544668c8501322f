"""The OpenAI embeddings request schema: ``model``, ``input`` (text, texts, token ids or token arrays) and options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.schemas._core import (
    Path,
    check_openai_body,
    fail,
    kind_of,
    need_enum,
    need_int,
    need_str,
)

__all__ = ["validate_embeddings"]

_ENCODINGS = frozenset({"float", "base64"})
_INPUT_HELP = "expected a non-empty string, array of strings, array of token ids, or array of token arrays"
_TOKEN_MAX = 2**32


def _tokens(value: list[Any], path: Path) -> None:
    for k, token in enumerate(value):
        need_int(token, (*path, k), 0, _TOKEN_MAX)


def _input(value: Any, path: Path) -> None:
    if isinstance(value, str):
        if not value:
            fail(path, _INPUT_HELP, "invalid_value")
        return
    if not isinstance(value, list) or not value:
        fail(path, f"{_INPUT_HELP}, got {kind_of(value) if value != [] else 'an empty array'}")
    first = value[0]
    if isinstance(first, str):
        for i, text in enumerate(value):
            need_str(text, (*path, i), non_empty=True)
    elif isinstance(first, list):
        for i, tokens in enumerate(value):
            if not isinstance(tokens, list) or not tokens:
                fail((*path, i), f"expected a non-empty array of token ids, got {kind_of(tokens)}")
            _tokens(tokens, (*path, i))
    elif isinstance(first, int) and not isinstance(first, bool):
        _tokens(value, path)
    else:
        fail((*path, 0), f"{_INPUT_HELP}, got an array of {kind_of(first).removeprefix('a ').removeprefix('an ')}")


def _model(value: Any, path: Path) -> None:
    if not isinstance(value, str) or not value.strip():
        fail(path, f"expected a non-empty string, got {kind_of(value)}")


_FIELDS: dict[str, Callable[[Any, Path], Any]] = {
    "model": _model,
    "input": _input,
    "dimensions": lambda v, p: need_int(v, p, 1, 1 << 20),
    "encoding_format": lambda v, p: need_enum(v, p, _ENCODINGS),
    "user": need_str,
}


def validate_embeddings(body: dict[str, Any]) -> tuple[str, Any]:
    """Check an embeddings body against OpenAI's schema; returns ``(model, input)``."""
    return check_openai_body(body, _FIELDS, "input")
