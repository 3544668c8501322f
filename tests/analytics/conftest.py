"""Fixtures for the analytics tests: an isolated data dir (APEX_DATA__DIR) filled with synthetic events."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts.settings import Settings, load_settings
from sandbox.synthetic_events import write_synthetic_events

N_EVENTS = 20_000
START = datetime(2026, 1, 5, 0, tzinfo=UTC)
HOURS = 6


@dataclass(frozen=True)
class EventsFixture:
    settings: Settings
    events_dir: Path
    files: list[Path]
    replayed: Path
    """A copy of one file under a new name, as a spill replay would leave: its events appear twice."""


@pytest.fixture(autouse=True)
def apex_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Every test gets its own data dir and no stray apex.yaml or APEX_* overrides."""
    for name in (
        "APEX_CONFIG",
        "APEX_EVENTS_DIR",
        "APEX_WAREHOUSE",
        "APEX_DATA__EVENTS_DIR",
        "APEX_DATA__WAREHOUSE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APEX_DATA__DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return load_settings()


@pytest.fixture
def synthetic_events(apex_settings: Settings) -> EventsFixture:
    events_dir = apex_settings.data.events_path.resolve()
    files = write_synthetic_events(events_dir, N_EVENTS, seed=7, start=START, hours=HOURS)
    replayed = files[0].with_name("events-replay-0.parquet")
    shutil.copy(files[0], replayed)
    return EventsFixture(apex_settings, events_dir, files, replayed)
