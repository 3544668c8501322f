"""The dashboard's questions to the warehouse, as pure functions: warehouse path + filters in, polars out.

One module per concept: ``filters`` (the date range and customer every question takes), ``spend`` (the Spend &
savings tab, from ``fct_llm_spend`` and ``agg_user_metrics_hourly``) and ``optimizers`` (the Optimizers tab, from
dbt's daily optimizer marts). Everything the app uses is importable from here.
"""

from dashboards.queries.filters import DataRange, Filters
from dashboards.queries.optimizers import (
    CACHE_STATUSES,
    LEVERS,
    SIMILARITY_BIN,
    VERIFICATION_STATUSES,
    cache_similarity,
    cache_statuses,
    compression_fallbacks,
    compression_summary,
    routing_tiers,
    savings_by_lever,
    unbilled_reasons,
)
from dashboards.queries.spend import (
    BREAKDOWN_COLUMN,
    BREAKDOWNS,
    Breakdown,
    Grain,
    customers,
    data_range,
    headline,
    spend_by,
    spend_over_time,
    unpriced_models,
)

__all__ = [
    "BREAKDOWNS",
    "BREAKDOWN_COLUMN",
    "CACHE_STATUSES",
    "LEVERS",
    "SIMILARITY_BIN",
    "VERIFICATION_STATUSES",
    "Breakdown",
    "DataRange",
    "Filters",
    "Grain",
    "cache_similarity",
    "cache_statuses",
    "compression_fallbacks",
    "compression_summary",
    "customers",
    "data_range",
    "headline",
    "routing_tiers",
    "savings_by_lever",
    "spend_by",
    "spend_over_time",
    "unbilled_reasons",
    "unpriced_models",
]
