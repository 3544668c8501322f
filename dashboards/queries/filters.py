"""The dashboard's filters (a UTC date range and an optional customer) and the SQL ``where`` clauses they become."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

__all__ = ["DataRange", "Filters", "day_where", "event_date_where", "hour_where"]


@dataclass(frozen=True)
class Filters:
    """Inclusive date range (UTC event dates) and an optional customer."""

    start: dt.date
    end: dt.date
    customer: str | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class DataRange:
    first: dt.date
    last: dt.date


def _with_customer(sql: str, params: list[Any], f: Filters) -> tuple[str, list[Any]]:
    if f.customer is None:
        return sql, params
    return sql + " and customer_id = ?", [*params, f.customer]


def event_date_where(f: Filters) -> tuple[str, list[Any]]:
    """``f`` on a request-grain table (``event_date``, ``customer_id``)."""
    return _with_customer("event_date between ? and ?", [f.start, f.end], f)


def day_where(f: Filters) -> tuple[str, list[Any]]:
    """``f`` on a daily mart (``day``, ``customer_id``)."""
    return _with_customer("day between ? and ?", [f.start, f.end], f)


def hour_where(f: Filters) -> tuple[str, list[Any]]:
    """``f`` on an hourly mart (``hour``, ``customer_id``)."""
    return _with_customer("hour >= ? and hour < ?", [f.start, f.end + dt.timedelta(days=1)], f)
