"""Each dbt model's Dagster asset group is its folder under dbt/models (dagster_project/assets/dbt_marts.py)."""

from typing import Any

import dagster as dg
import pytest

from dagster_project.assets.dbt_marts import DBT_PROJECT_DIR
from dagster_project.definitions import build_definitions

FOLDER_GROUPS = {
    "staging": "staging",
    "intermediate": "intermediate",
    "marts/spend": "spend",
    "marts/savings": "savings",
    # "billing" is the export/Stripe group that the hourly apex_all job leaves out
    "marts/billing": "billing_marts",
    "marts/admin": "admin",
}
MODELS = DBT_PROJECT_DIR / "models"


def _models_by_folder() -> dict[str, list[str]]:
    return {folder: sorted(p.stem for p in (MODELS / folder).glob("*.sql")) for folder in FOLDER_GROUPS}


def test_every_model_sits_in_a_grouped_folder() -> None:
    grouped = {model for models in _models_by_folder().values() for model in models}
    assert grouped == {p.stem for p in MODELS.rglob("*.sql")}


def test_each_model_has_a_yml_beside_it() -> None:
    missing = [str(p.relative_to(MODELS)) for p in MODELS.rglob("*.sql") if not p.with_suffix(".yml").is_file()]
    assert missing == []


@pytest.fixture(scope="module")
def graph() -> Any:
    return build_definitions().resolve_asset_graph()


@pytest.mark.parametrize("folder", list(FOLDER_GROUPS))
def test_group_is_the_models_folder(graph, folder: str) -> None:
    models = _models_by_folder()[folder]
    assert models
    assert {m: graph.get(dg.AssetKey(m)).group_name for m in models} == dict.fromkeys(models, FOLDER_GROUPS[folder])


def test_seeds_keep_their_group_and_billing_marts_run_in_apex_all(graph) -> None:
    assert graph.get(dg.AssetKey("customer_contracts")).group_name == "reference_data"
    job = build_definitions().resolve_job_def("apex_all")
    assert {dg.AssetKey(m) for m in _models_by_folder()["marts/billing"]} <= job.asset_layer.executable_asset_keys
