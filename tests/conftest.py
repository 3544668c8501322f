"""Shared isolation: every test gets its own data dir and no stray APEX_* settings from the environment."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _isolate_apex_env(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("APEX_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APEX_DATA__DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    yield
