"""Cost per call from litellm's price table, read from the installed wheel's JSON.

litellm itself is never imported here: its import takes seconds and tries the network. The table version
recorded on every event is ``litellm-<package version>-<sha256 of the JSON, 12 hex>``, so any event can be
re-priced from exactly the table that priced it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import orjson

__all__ = ["ModelPrice", "PriceTable", "Priced", "litellm_price_file"]

_PRICE_FILE = "model_prices_and_context_window_backup.json"


def litellm_package_dir() -> Path:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("litellm is not installed; its price table is required (run `make setup`).")
    return Path(next(iter(spec.submodule_search_locations)))


def litellm_price_file() -> Path:
    return litellm_package_dir() / _PRICE_FILE


@dataclass(frozen=True, slots=True)
class ModelPrice:
    input_cost_per_token: float
    output_cost_per_token: float
    cache_read_cost_per_token: float
    cache_write_cost_per_token: float = None  # type: ignore[assignment]
    """Defaults to the input price (providers without prompt-cache writes)."""

    def __post_init__(self) -> None:
        if self.cache_write_cost_per_token is None:
            object.__setattr__(self, "cache_write_cost_per_token", self.input_cost_per_token)


@dataclass(frozen=True, slots=True)
class Priced:
    """The price of one call; ``cost_usd`` is None when the model is not in the table."""

    cost_usd: float | None
    price: ModelPrice | None

    @property
    def status(self) -> str:
        return "priced" if self.cost_usd is not None else "unknown"


class PriceTable:
    def __init__(self, prices: dict[str, ModelPrice], version: str) -> None:
        self._prices = prices
        self.version = version

    @classmethod
    def from_file(cls, path: Path, package_version: str = "custom") -> PriceTable:
        raw_bytes = path.read_bytes()
        raw = orjson.loads(raw_bytes)
        prices: dict[str, ModelPrice] = {}
        for name, entry in raw.items():
            if name == "sample_spec" or not isinstance(entry, dict):
                continue
            inp = entry.get("input_cost_per_token")
            out = entry.get("output_cost_per_token")
            if not isinstance(inp, int | float) or not isinstance(out, int | float):
                continue
            read = entry.get("cache_read_input_token_cost")
            write = entry.get("cache_creation_input_token_cost")
            prices[name] = ModelPrice(
                float(inp),
                float(out),
                float(read) if isinstance(read, int | float) else float(inp),
                float(write) if isinstance(write, int | float) else float(inp),
            )
        digest = hashlib.sha256(raw_bytes).hexdigest()[:12]
        return cls(prices, f"litellm-{package_version}-{digest}")

    @classmethod
    def from_litellm(cls) -> PriceTable:
        return cls.from_file(litellm_price_file(), importlib.metadata.version("litellm"))

    def lookup(self, model: str | None) -> ModelPrice | None:
        if not model:
            return None
        found = self._prices.get(model)
        if found is None and "/" in model:
            # "openai/gpt-4o" style names: the table keys bare names for first-party providers.
            found = self._prices.get(model.split("/", 1)[1])
        return found

    def __contains__(self, model: str) -> bool:
        return self.lookup(model) is not None

    def price(
        self,
        model: str | None,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> Priced:
        """List cost: plain input + cache reads + cache writes (each at its own rate) + output."""
        p = self.lookup(model)
        if p is None:
            return Priced(None, None)
        cached = min(max(cached_tokens, 0), prompt_tokens)
        written = min(max(cache_write_tokens, 0), prompt_tokens - cached)
        cost = (
            (prompt_tokens - cached - written) * p.input_cost_per_token
            + cached * p.cache_read_cost_per_token
            + written * p.cache_write_cost_per_token
            + completion_tokens * p.output_cost_per_token
        )
        return Priced(round(cost, 12), p)
