from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from contracts.events import EVENT_SCHEMA
from sandbox.synthetic_events import PRICES, SCHEMA_FILE_NAME, UNKNOWN_MODEL, write_synthetic_events

START = datetime(2026, 3, 1, 22, tzinfo=UTC)


def _read(events_dir: Path) -> pl.DataFrame:
    return pl.read_parquet(events_dir / "**" / "*.parquet", hive_partitioning=False)


def test_files_conform_to_the_event_schema(tmp_path: Path) -> None:
    files = write_synthetic_events(tmp_path, 5_000, seed=1, start=START, hours=4)
    assert len(files) == 4
    for path in [*files, tmp_path / SCHEMA_FILE_NAME]:
        assert pq.read_schema(path).equals(EVENT_SCHEMA), path
    assert pq.read_metadata(tmp_path / SCHEMA_FILE_NAME).num_rows == 0
    assert not list(tmp_path.glob("**/*.tmp"))


def test_files_are_partitioned_by_utc_hour_of_ts_start(tmp_path: Path) -> None:
    files = write_synthetic_events(tmp_path, 3_000, seed=2, start=START, hours=3)
    assert [p.relative_to(tmp_path).as_posix() for p in files] == [
        "date=2026-03-01/hour=22/events-synthetic-0.parquet",
        "date=2026-03-01/hour=23/events-synthetic-0.parquet",
        "date=2026-03-02/hour=00/events-synthetic-0.parquet",
    ]
    for path in files:
        hours = pl.read_parquet(path)["ts_start"].dt.strftime("date=%Y-%m-%d/hour=%H").unique().to_list()
        assert hours == [path.parent.relative_to(tmp_path).as_posix()]


def test_events_look_like_gateway_traffic(tmp_path: Path) -> None:
    write_synthetic_events(tmp_path, 50_000, seed=3, start=START)
    df = _read(tmp_path)
    assert df.height == 50_000
    assert df["event_id"].n_unique() == 50_000
    assert set(df["served_model"].unique()) == {*PRICES, UNKNOWN_MODEL}

    errors = df.filter(pl.col("http_status") >= 400)
    assert 0.02 < errors.height / df.height < 0.04
    assert set(errors["http_status"].unique()) <= {429, 500, 502}
    assert errors["price_status"].unique().to_list() == ["no_usage"]
    assert errors["usage_source"].unique().to_list() == ["none"]
    assert errors["total_tokens"].null_count() == errors.height

    unknown = df.filter(pl.col("price_status") == "unknown")
    assert 0.005 < unknown.height / df.height < 0.015
    assert unknown["served_model"].unique().to_list() == [UNKNOWN_MODEL]
    assert unknown["cost_usd"].null_count() == unknown.height

    priced = df.filter(pl.col("price_status") == "priced")
    assert priced["cost_usd"].null_count() == 0
    assert (priced["cost_usd"] >= 0).all()
    assert set(priced["usage_source"].unique()) == {"provider", "estimated"}
    assert df["is_stream"].any() and not df["is_stream"].all()
    assert (df["ts_end"] >= df["ts_start"]).all()
    assert (priced["total_tokens"] == priced["prompt_tokens"] + priced["completion_tokens"]).all()


def test_same_seed_same_events_and_new_calls_append(tmp_path: Path) -> None:
    first = write_synthetic_events(tmp_path / "a", 1_000, seed=5, start=START, hours=1)
    again = write_synthetic_events(tmp_path / "b", 1_000, seed=5, start=START, hours=1)
    assert pl.read_parquet(first[0]).equals(pl.read_parquet(again[0]))

    more = write_synthetic_events(tmp_path / "a", 1_000, seed=6, start=START, hours=1)
    assert more[0].name == "events-synthetic-1.parquet"
    assert _read(tmp_path / "a").height == 2_000


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_batches(tmp_path: Path, n: int) -> None:
    files = write_synthetic_events(tmp_path, n, start=START)
    assert len(files) == n
    assert (tmp_path / SCHEMA_FILE_NAME).exists()
