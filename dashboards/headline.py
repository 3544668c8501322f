"""The headline value numbers (spend, savings, savings rate, ROI after Apex's fee) and how they are shown."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

__all__ = ["APEX_FEE_RATE", "Headline", "format_count", "format_pct", "format_usd"]

APEX_FEE_RATE = 0.20
"""Apex's fee as a share of the savings it produces."""


@dataclass(frozen=True)
class Headline:
    spend_usd: float
    savings_usd: float
    requests: int
    error_requests: int
    simulated_requests: int
    unpriced_requests: int

    @classmethod
    def from_frame(cls, df: pl.DataFrame) -> Headline:
        """Build from the one-row frame ``queries.headline`` returns."""
        row = df.row(0, named=True)
        return cls(
            spend_usd=float(row["spend_usd"]),
            savings_usd=float(row["savings_usd"]),
            requests=int(row["requests"]),
            error_requests=int(row["error_requests"]),
            simulated_requests=int(row["simulated_requests"]),
            unpriced_requests=int(row["unpriced_requests"]),
        )

    @property
    def spend_without_apex_usd(self) -> float:
        return self.spend_usd + self.savings_usd

    @property
    def savings_rate(self) -> float | None:
        base = self.spend_without_apex_usd
        return self.savings_usd / base if base > 0 else None

    @property
    def apex_fee_usd(self) -> float:
        return self.savings_usd * APEX_FEE_RATE

    @property
    def roi(self) -> float | None:
        """Net savings after Apex's fee, per dollar of fee; None when there is no fee to divide by."""
        fee = self.apex_fee_usd
        return (self.savings_usd - fee) / fee if fee > 0 else None

    @property
    def error_rate(self) -> float | None:
        return self.error_requests / self.requests if self.requests else None


def format_usd(value: float) -> str:
    """Dollars with cents; sub-dollar amounts keep four decimals so per-request costs don't read as $0.00."""
    if value != 0 and abs(value) < 1:
        return f"${value:,.4f}"
    return f"${value:,.2f}"


def format_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def format_count(value: int) -> str:
    return f"{value:,}"
