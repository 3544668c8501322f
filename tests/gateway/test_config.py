"""Settings: file + APEX_* environment, and errors that name the field."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from contracts.console import app
from contracts.settings import ConfigError
from gateway.settings import load_settings

BAD = [
    ("port-not-int", "gateway:\n  port: eighty\n", "gateway.port"),
    ("unknown-field", "gateway:\n  prot: 80\n", "gateway.prot"),
    ("provider-without-url", "providers:\n  - {name: x, kind: openai}\n", "needs base_url"),
    (
        "route-to-missing-provider",
        "providers: []\nmodels:\n  - {name: m, provider: nope}\n",
        "models.0.provider",
    ),
    ("bad-kind", "providers:\n  - {name: x, kind: carrier-pigeon}\n", "providers.0.kind"),
    ("not-a-mapping", "- just\n- a list\n", "top level must be a mapping"),
    ("bad-yaml", "gateway: [unclosed\n", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "needle"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_names_the_file_and_field(tmp_path, text, needle):
    path = tmp_path / "apex.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(path) in str(info.value)
    assert needle in str(info.value)


def test_env_overrides_file(tmp_path):
    path = tmp_path / "apex.yaml"
    path.write_text("gateway:\n  port: 9000\n")
    s = load_settings(path, environ={"APEX_GATEWAY__PORT": "9100", "APEX_DATA__DIR": "/srv/apex"})
    assert s.gateway.port == 9100
    assert str(s.data.events_path) == "/srv/apex/events"


def test_missing_config_file_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml")


def test_cli_fails_at_start_on_bad_config(tmp_path):
    path = tmp_path / "apex.yaml"
    path.write_text("gateway:\n  port: -1\n")
    res = CliRunner().invoke(app, ["gateway", "--config", str(path)])
    assert res.exit_code == 2
    assert "gateway.port" in res.output
