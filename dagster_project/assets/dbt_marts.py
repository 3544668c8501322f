"""The dbt models as Dagster assets; ``dbt build`` runs them and reports its tests as asset checks."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._utils import run_with_concurrent_update_guard
from dagster_dbt import DbtCliResource, DbtProject, DbtProjectPreparer, dbt_assets

from dagster_project.resources import ApexDataResource, dbt_executable

__all__ = ["DBT_PROJECT", "DBT_PROJECT_DIR", "apex_dbt_models", "build_dbt_resource"]

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt"


class VenvDbtProjectPreparer(DbtProjectPreparer):
    """Parse the project with the venv's dbt under ``dagster dev`` or whenever the manifest is missing.

    The stock preparer looks ``dbt`` up on PATH, which a venv started as ``.venv/bin/dagster dev`` lacks, and
    only prepares under ``dagster dev`` (a fresh checkout, the tests and the demo have no manifest yet).
    """

    def prepare_if_dev(self, project: "DbtProject") -> None:
        if self.using_dagster_dev() or not project.manifest_path.exists():
            self.prepare(project)

    def prepare(self, project: "DbtProject") -> None:
        run_with_concurrent_update_guard(project.manifest_path, self._parse, project=project)

    def _parse(self, project: "DbtProject") -> None:
        dbt = DbtCliResource(project_dir=project, dbt_executable=dbt_executable())
        dbt.cli(["parse", "--quiet"], target_path=project.target_path).wait()


DBT_PROJECT = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target="local")
VenvDbtProjectPreparer().prepare_if_dev(DBT_PROJECT)


def build_dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=DBT_PROJECT, dbt_executable=dbt_executable())


@dbt_assets(manifest=DBT_PROJECT.manifest_path, project=DBT_PROJECT)
def apex_dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, apex_data: ApexDataResource
) -> Iterator[Any]:
    with apex_data.dbt_invocation_env():
        invocation = dbt.cli(["build"], context=context)
    yield from invocation.stream()
