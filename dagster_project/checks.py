"""Blocking data-quality check on the raw events, run with great-expectations 1.x (ephemeral context).

``dagster-ge`` still targets GX < 1, so the check drives GX directly: the event columns it needs are read
with pyarrow in chunks, handed to a pandas datasource, and each failed expectation is reported in the check
metadata.

The check is partitioned like the raw events (one UTC day): a run validates only the files of its day(s), so
its cost is one day's events, however long the history. A run of a range of days (a single-run backfill, the
demo) validates the range's files in one evaluation, which Dagster 1.13 records without a partition (an
``AssetCheckResult`` carries none; a single-day run's evaluation is recorded for its day).
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import pyarrow as pa
import pyarrow.dataset as ds

from contracts.event_files import list_event_files
from contracts.events import EVENT_SCHEMA, KNOWN_HTTP_STATUSES, PRICE_STATUSES, USAGE_SOURCES
from dagster_project.assets.raw_events import raw_gateway_events
from dagster_project.partitions import EVENT_DAYS
from dagster_project.resources import ApexDataResource

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core import ExpectationSuiteValidationResult

__all__ = [
    "KNOWN_HTTP_STATUSES",
    "EventsValidation",
    "raw_events_quality",
    "read_event_chunks",
    "read_event_file_chunks",
    "validate_events",
]

_REQUIRED = ("event_id", "request_id")
_NON_NEGATIVE = (
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "total_tokens",
    "cost_usd",
    "baseline_cost_usd",
)
_IN_SET: dict[str, tuple[Any, ...]] = {
    "http_status": KNOWN_HTTP_STATUSES,
    "usage_source": USAGE_SOURCES,
    "price_status": PRICE_STATUSES,
}
_COLUMNS = (*_REQUIRED, *_NON_NEGATIVE, *_IN_SET)
_CHUNK_ROWS = 1_000_000


def _suite() -> Any:
    import great_expectations as gx

    suite = gx.ExpectationSuite(name="raw_events_quality")
    for column in _REQUIRED:
        suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column=column))
    for column in _NON_NEGATIVE:  # column-map expectations skip nulls: null cost/tokens are allowed
        suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column=column, min_value=0))
    for column, values in _IN_SET.items():
        suite.add_expectation(gx.expectations.ExpectColumnValuesToBeInSet(column=column, value_set=list(values)))
    return suite


@dataclass
class EventsValidation:
    """The suite's outcome over every chunk of the events: one entry per failed expectation."""

    rows: int = 0
    expectations: int = 0
    failures: dict[tuple[str, str | None], dict[str, Any]] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return not self.failures

    def add(self, result: "ExpectationSuiteValidationResult", rows: int) -> None:
        self.rows += rows
        self.expectations = len(result.results)
        for outcome in result.results:
            if outcome.success:
                continue
            config = outcome.expectation_config
            assert config is not None  # results of a suite always carry their expectation
            column = config.kwargs.get("column")
            failed = self.failures.setdefault(
                (config.type, column),
                {
                    "expectation": config.type,
                    "column": column,
                    "unexpected_count": 0,
                    "unexpected_sample": [],
                },
            )
            failed["unexpected_count"] += outcome.result.get("unexpected_count") or 0
            sample = [str(v) for v in outcome.result.get("partial_unexpected_list") or []]
            failed["unexpected_sample"] = (failed["unexpected_sample"] + sample)[:5]
            if outcome.exception_info.get("raised_exception"):
                failed["exception"] = str(outcome.exception_info.get("exception_message"))


def validate_events(frames: "Iterable[pd.DataFrame]") -> EventsValidation:
    """Run the raw-events expectation suite over each frame, in throwaway GX contexts."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    validation = EventsValidation()
    for frame in frames:
        # a fresh context per chunk: GX's execution engine keeps every batch it loaded
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        batch_definition = (
            context.data_sources.add_pandas("gateway")
            .add_dataframe_asset("raw_gateway_events")
            .add_batch_definition_whole_dataframe("chunk")
        )
        suite = context.suites.add(_suite())
        result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
        validation.add(result, len(frame))
        del frame, context, batch_definition
    return validation


def read_event_chunks(
    events_dir: Path, chunk_rows: int = _CHUNK_ROWS, days: Iterable[str] | None = None
) -> "Iterator[pd.DataFrame]":
    """The checked columns of every event file (``days`` given: of those UTC days' files only), as pandas
    frames of about ``chunk_rows`` rows."""
    return read_event_file_chunks(list_event_files(events_dir, days), chunk_rows)


def read_event_file_chunks(files: Iterable[Path], chunk_rows: int = _CHUNK_ROWS) -> "Iterator[pd.DataFrame]":
    """The checked columns of ``files``, as pandas frames of about ``chunk_rows`` rows.

    Chunks keep memory flat however many events there are; no file at all still yields one empty frame so
    the suite runs (and reports its expectations) either way.
    """
    schema = pa.schema([EVENT_SCHEMA.field(c) for c in _COLUMNS])
    dataset = ds.dataset([str(p) for p in files], schema=schema, format="parquet")
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    yielded = False
    for batch in dataset.to_batches(columns=list(_COLUMNS), batch_size=chunk_rows):
        pending.append(batch)
        pending_rows += batch.num_rows
        if pending_rows >= chunk_rows:
            yield pa.Table.from_batches(pending, schema=schema).to_pandas()
            yielded = True
            pending, pending_rows = [], 0
    if pending_rows or not yielded:
        yield pa.Table.from_batches(pending, schema=schema).to_pandas()


@dg.asset_check(
    asset=raw_gateway_events,
    name="raw_events_quality",
    blocking=True,
    partitions_def=EVENT_DAYS,
    description=(
        "GX suite over the day's events: ids present, tokens and money >= 0, status and enum columns in their sets."
    ),
)
def raw_events_quality(context: dg.AssetCheckExecutionContext, apex_data: ApexDataResource) -> dg.AssetCheckResult:
    # a partitioned check needs a partitioned run (Dagster 1.13 fails a run without one), unlike the raw asset
    days = list(context.partition_keys)
    files = list_event_files(apex_data.events_path, days)
    validation = validate_events(read_event_file_chunks(files))
    failures = list(validation.failures.values())
    context.log.info(f"validated {validation.rows} rows in {len(files)} files of {', '.join(days)}")
    return dg.AssetCheckResult(
        passed=validation.success,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "days": dg.MetadataValue.json(days),
            "files_validated": len(files),
            "rows_validated": validation.rows,
            "expectations": validation.expectations,
            "failed_expectations": dg.MetadataValue.json(failures),
            "failed_count": len(failures),
        },
    )
