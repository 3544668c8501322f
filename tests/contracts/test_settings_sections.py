"""One apex.yaml, split by owner: each process validates its own sections and only those."""

from __future__ import annotations

import pytest
import yaml

from contracts.settings import (
    AnalyticsSettings,
    ConfigError,
    DashboardSettings,
    Settings,
    load_analytics_settings,
    load_dashboard_settings,
    load_settings,
)

# A file whose gateway section is broken but whose shared sections are fine.
BROKEN_GATEWAY = {
    "gateway": {"port": "eighty"},
    "data": {"dir": "srv-data"},
    "ports": {"dashboard": 9501},
    "providers": [{"name": "sim", "kind": "simulated"}],
    "models": [{"name": "gpt-4o", "provider": "sim", "price_model": "gpt-4o-2024-08-06"}],
}


def _write(tmp_path, doc):
    path = tmp_path / "apex.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_gateway_process_refuses_the_file_naming_the_field(tmp_path):
    path = _write(tmp_path, BROKEN_GATEWAY)
    with pytest.raises(ConfigError, match="gateway.port"):
        load_settings(path, environ={})


def test_the_dashboard_loads_its_own_sections_of_the_same_file(tmp_path):
    s = load_dashboard_settings(_write(tmp_path, BROKEN_GATEWAY), environ={})
    assert isinstance(s, DashboardSettings)
    assert str(s.data.warehouse_path) == "srv-data/warehouse.duckdb"
    assert s.ports.dashboard == 9501
    assert not hasattr(s, "gateway")


def test_the_analytics_side_reads_routes_but_not_the_gateway_section(tmp_path):
    s = load_analytics_settings(_write(tmp_path, BROKEN_GATEWAY), environ={})
    assert isinstance(s, AnalyticsSettings)
    route = s.route("gpt-4o")
    assert route is not None and route.baseline_price_model == "gpt-4o-2024-08-06"
    assert s.routing_policy_path.as_posix() == "srv-data/policies/routing_policy.json"


def test_a_section_a_process_owns_is_still_validated(tmp_path):
    doc = {**BROKEN_GATEWAY, "data": {"dir": ["not", "a", "path"]}}
    with pytest.raises(ConfigError, match="data.dir"):
        load_dashboard_settings(_write(tmp_path, doc), environ={})
    doc = {**BROKEN_GATEWAY, "models": [{"name": "m", "provider": "nope"}]}
    with pytest.raises(ConfigError, match="models.0.provider"):
        load_analytics_settings(_write(tmp_path, doc), environ={})


def test_environment_overrides_reach_every_view(tmp_path):
    env = {"APEX_DATA__DIR": "/srv/apex"}
    views: list[Settings | AnalyticsSettings | DashboardSettings] = [
        load_settings(None, env),
        load_analytics_settings(None, env),
        load_dashboard_settings(None, env),
    ]
    assert {str(v.data.events_path) for v in views} == {"/srv/apex/events"}
