"""The great-expectations suite behind the ``raw_events_quality`` check, case by case."""

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from dagster_project.checks import read_event_chunks, validate_events
from sandbox.synthetic_events import write_synthetic_events

BAD_VALUES = [
    pytest.param("event_id", None, "expect_column_values_to_not_be_null", id="null-event-id"),
    pytest.param("request_id", None, "expect_column_values_to_not_be_null", id="null-request-id"),
    pytest.param("prompt_tokens", -1, "expect_column_values_to_be_between", id="negative-tokens"),
    pytest.param("baseline_cost_usd", -0.5, "expect_column_values_to_be_between", id="negative-baseline"),
    pytest.param("http_status", 999, "expect_column_values_to_be_in_set", id="unknown-status"),
    pytest.param("usage_source", "guessed", "expect_column_values_to_be_in_set", id="bad-usage-source"),
    pytest.param("price_status", "free", "expect_column_values_to_be_in_set", id="bad-price-status"),
]


@pytest.fixture
def events_dir(tmp_path: Path) -> Path:
    write_synthetic_events(tmp_path / "events", 3_000, seed=11, hours=2)
    return tmp_path / "events"


def test_synthetic_events_pass(events_dir: Path) -> None:
    validation = validate_events(read_event_chunks(events_dir))
    assert validation.success, validation.failures
    assert validation.rows == 3_000
    assert validation.expectations == 12  # one per required, non-negative and in-set column


@pytest.mark.parametrize(("column", "value", "expectation"), BAD_VALUES)
def test_one_bad_value_fails_its_expectation(events_dir: Path, column: str, value: Any, expectation: str) -> None:
    frames = list(read_event_chunks(events_dir))
    frames[0].loc[0, column] = value

    validation = validate_events(frames)

    assert not validation.success
    assert list(validation.failures) == [(expectation, column)]
    assert validation.failures[(expectation, column)]["unexpected_count"] == 1


def test_null_money_and_tokens_are_allowed(events_dir: Path) -> None:
    frames = list(read_event_chunks(events_dir))
    frames[0].loc[0:10, ["cost_usd", "prompt_tokens", "total_tokens"]] = None
    assert validate_events(frames).success


def test_failures_add_up_across_chunks(events_dir: Path) -> None:
    files = sorted(events_dir.glob("date=*/hour=*/*.parquet"))
    for path in files:  # one negative cost in every file
        table = pq.read_table(path).to_pandas()
        table.loc[0, "cost_usd"] = -1.0
        table.to_parquet(path)
    chunks = list(read_event_chunks(events_dir, chunk_rows=500))
    assert len(chunks) > 2

    validation = validate_events(chunks)

    assert validation.rows == 3_000
    failed = validation.failures[("expect_column_values_to_be_between", "cost_usd")]
    assert failed["unexpected_count"] == len(files)
