"""Settings for the translated upstream kinds: what each kind requires, named in the error."""

from __future__ import annotations

import pytest
import yaml

from contracts.settings import ConfigError
from gateway.settings import load_settings


@pytest.mark.parametrize(
    ("provider", "missing"),
    [
        pytest.param({"kind": "azure", "api_version": "2024-10-21"}, "base_url", id="azure-base-url"),
        pytest.param(
            {"kind": "azure", "base_url": "https://x.openai.azure.com"}, "api_version", id="azure-api-version"
        ),
        pytest.param({"kind": "vertex", "location": "us-central1"}, "project", id="vertex-project"),
        pytest.param({"kind": "vertex", "project": "p"}, "location", id="vertex-location"),
    ],
)
def test_missing_required_field_is_named(tmp_path, provider, missing):
    path = tmp_path / "apex.yaml"
    path.write_text(yaml.safe_dump({"providers": [{"name": "up", **provider}], "models": []}))
    with pytest.raises(ConfigError, match=f"needs {missing}"):
        load_settings(path, environ={})


@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
def test_anthropic_and_gemini_default_to_the_public_endpoint(tmp_path, kind):
    path = tmp_path / "apex.yaml"
    path.write_text(yaml.safe_dump({"providers": [{"name": "up", "kind": kind}], "models": []}))
    assert load_settings(path, environ={}).providers[0].base_url is None
