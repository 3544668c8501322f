"""The dbt models as Dagster assets; ``dbt build`` runs them and reports its tests as asset checks.

The models are partitioned by UTC day like the raw events they read (dagster_project/partitions.py). A run for
day ``D``, or for the days ``D..E`` of a backfill (one run: the default backfill policy of time-window
partitioned dbt assets is single-run), passes ``apex_reprocess_from = D 00:00`` and ``apex_reprocess_to = E+1
00:00`` to ``dbt build``: the incremental models then re-process exactly the hours of the window
(dbt/macros/incremental.sql), so files that arrived late for day ``D`` reach the marts, and files of later days
wait for their own run (and their own blocking check). Concurrent runs (one per day from the sensor)
take turns on the DuckDB file (``ApexDataResource.warehouse_lock``). The other models (views, tables, seeds)
are rebuilt whole on every run as before; the first build (no table yet) is a full one whatever the var says.

Each model's asset group is its folder under ``dbt/models`` (staging, intermediate, spend, savings,
billing_marts): ``ApexDbtTranslator``.
"""

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
from dagster._utils import run_with_concurrent_update_guard
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, DbtProjectPreparer, dbt_assets

from dagster_project.partitions import EVENT_DAYS, dbt_reprocess_from, run_days
from dagster_project.resources import ApexDataResource, dbt_executable

__all__ = ["DBT_PROJECT", "DBT_PROJECT_DIR", "ApexDbtTranslator", "apex_dbt_models", "build_dbt_resource"]

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


class ApexDbtTranslator(DagsterDbtTranslator):
    """Groups the dbt models by the folder that holds them: ``models/staging/`` -> ``staging``,
    ``models/marts/spend/`` -> ``spend``. A ``meta.dagster.group`` set in dbt (the seeds' ``reference_data``) wins.

    The billing folder's group is ``billing_marts``: ``billing`` is the export/Stripe group, which the hourly
    ``apex_all`` job leaves to the monthly billing job, and the billing marts must be refreshed with the others.
    """

    FOLDER_GROUPS: ClassVar[Mapping[str, str]] = {"billing": "billing_marts"}

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        configured = super().get_group_name(dbt_resource_props)
        fqn = dbt_resource_props.get("fqn", [])
        if configured or dbt_resource_props.get("resource_type") != "model" or len(fqn) < 3:
            return configured
        folder = fqn[-2]  # fqn is [project, folder, ..., model]
        return self.FOLDER_GROUPS.get(folder, folder)


def build_dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=DBT_PROJECT, dbt_executable=dbt_executable())


def dbt_build_args(context: dg.AssetExecutionContext) -> list[str]:
    """``dbt build`` re-processing from the start of the run's partition window (one day, or a backfill range);
    a run without a partition keeps the models' own hour watermark."""
    if run_days(context) is None:
        return ["build"]
    window = context.partition_time_window
    # the window's end bounds it too: later days' files wait for their own run and their own blocking checks
    dbt_vars = {
        "apex_reprocess_from": dbt_reprocess_from(window.start),
        "apex_reprocess_to": dbt_reprocess_from(window.end),
    }
    return ["build", "--vars", json.dumps(dbt_vars)]


@dbt_assets(
    manifest=DBT_PROJECT.manifest_path,
    project=DBT_PROJECT,
    partitions_def=EVENT_DAYS,
    dagster_dbt_translator=ApexDbtTranslator(),
)
def apex_dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, apex_data: ApexDataResource
) -> Iterator[Any]:
    args = dbt_build_args(context)
    context.log.info(f"dbt {' '.join(args)} for {', '.join(run_days(context) or ['every day'])}")
    with apex_data.warehouse_lock(on_wait=context.log.info):
        with apex_data.dbt_invocation_env():
            invocation = dbt.cli(args, context=context)
        yield from invocation.stream()
