"""Optimizer assets: the routing-feedback table and the learned routing policy the gateway hot-reloads.

``routing_feedback``  long table ``(prompt, model, score, subject, benchmark, source)``: the RouteLLM seed shipped in
                      ``optimizers/data/`` plus every graded call found under ``<data dir>/feedback/`` (Parquet or
                      CSV files with at least ``prompt, model, score``). A file missing a column is skipped with a
                      warning naming the file and the column; the rest still loads.
``routing_policy``    trains ``optimizers.routing`` on that table and writes the versioned policy file
                      (``<data dir>/policies/routing_policy.json``, plus a copy named by version); the gateway picks
                      a new version up within ``optimizers.auto_routing.reload_seconds``, without a restart.
"""

import hashlib
from pathlib import Path
from typing import Any, cast

import dagster as dg
import polars as pl

from dagster_project.resources import ApexDataResource
from optimizers.routing.train import ROUTELLM_STRONG_MODEL, ROUTELLM_WEAK_MODEL

__all__ = ["SEED_FILE", "load_feedback", "routing_feedback", "routing_policy"]

SEED_FILE = Path(__file__).resolve().parents[2] / "optimizers" / "data" / "routellm_dev.csv.gz"
FEEDBACK_COLUMNS = ("prompt", "model", "score")


class RoutingPolicyConfig(dg.Config):
    strong_model: str = ROUTELLM_STRONG_MODEL
    """The feedback table's strong model (the quality reference)."""
    weak_model: str = ROUTELLM_WEAK_MODEL
    """The feedback table's cheaper model."""
    features: str = "lexical"
    """``lexical`` (default: as good on unseen subjects, microseconds per decision) or ``embedding+lexical``."""


def _markdown(frame: pl.DataFrame) -> str:
    def cell(value: object) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.width]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines)


def _read_feedback_file(path: Path) -> pl.DataFrame:
    frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
    missing = [c for c in FEEDBACK_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(FEEDBACK_COLUMNS)})")
    for optional in ("subject", "benchmark"):
        if optional not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.String).alias(optional))
    return frame.select(
        pl.col("prompt").cast(pl.String),
        pl.col("model").cast(pl.String),
        pl.col("score").cast(pl.Float64),
        pl.col("subject").cast(pl.String),
        pl.col("benchmark").cast(pl.String),
        pl.lit(str(path)).alias("source"),
    )


def load_feedback(feedback_dir: Path, seed: Path = SEED_FILE) -> tuple[pl.DataFrame, list[str]]:
    """The seed plus every feedback file under ``feedback_dir``; returns the table and the problems found."""
    from optimizers.routing import feedback_from_routellm

    seed_frame = feedback_from_routellm(seed)
    for optional in ("subject", "benchmark"):
        if optional not in seed_frame.columns:
            seed_frame = seed_frame.with_columns(pl.lit(None, pl.String).alias(optional))
    frames = [
        seed_frame.select(
            pl.col("prompt").cast(pl.String),
            pl.col("model").cast(pl.String),
            pl.col("score").cast(pl.Float64),
            pl.col("subject").cast(pl.String),
            pl.col("benchmark").cast(pl.String),
            pl.lit(f"seed:{seed.name}").alias("source"),
        )
    ]
    problems: list[str] = []
    files = sorted([*feedback_dir.glob("**/*.parquet"), *feedback_dir.glob("**/*.csv")])
    for path in files:
        try:
            frames.append(_read_feedback_file(path))
        except Exception as exc:  # one bad file must not stop the others
            problems.append(str(exc) if str(path) in str(exc) else f"{path}: {exc}")
    table = pl.concat(frames).filter(pl.col("prompt").is_not_null() & pl.col("score").is_not_null())
    return table, problems


@dg.asset(
    key="routing_feedback",
    group_name="optimizers",
    description="Routing feedback (prompt, model, score): the RouteLLM seed plus graded calls in <data>/feedback/.",
    kinds={"parquet", "polars"},
)
def routing_feedback(context: dg.AssetExecutionContext, apex_data: ApexDataResource) -> dg.MaterializeResult:
    table, problems = load_feedback(apex_data.feedback_path)
    for problem in problems:
        context.log.warning(f"feedback file skipped: {problem}")
    out = apex_data.policies_path / "routing_feedback.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".parquet.tmp")
    table.write_parquet(tmp)
    tmp.replace(out)
    by_model = table.group_by("model").agg(pl.len().alias("rows"), pl.col("score").mean().alias("mean_score"))
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(out)),
            "row_count": dg.MetadataValue.int(table.height),
            "prompts": dg.MetadataValue.int(table["prompt"].n_unique()),
            "by_model": dg.MetadataValue.md(_markdown(by_model.sort("model"))),
            "skipped_files": dg.MetadataValue.int(len(problems)),
            "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        }
    )


@dg.asset(
    key="routing_policy",
    group_name="optimizers",
    deps=["routing_feedback"],
    description="Learned routing policy: a threshold per quality target; the gateway hot-reloads it.",
    kinds={"python", "json"},
)
def routing_policy(
    context: dg.AssetExecutionContext, apex_data: ApexDataResource, config: RoutingPolicyConfig
) -> dg.MaterializeResult:
    from contracts.pricing import PriceTable
    from optimizers.routing import train_policy, write_policy

    feedback_file = apex_data.policies_path / "routing_feedback.parquet"
    if not feedback_file.is_file():
        raise dg.Failure(f"{feedback_file} does not exist: materialize routing_feedback first")
    feedback = pl.read_parquet(feedback_file)
    models = set(feedback["model"].unique().to_list())
    for name in (config.strong_model, config.weak_model):
        if name not in models:
            raise dg.Failure(f"model {name!r} has no rows in the routing feedback (have {sorted(models)})")
    prices = PriceTable.from_litellm()
    unit_prices = {}
    for name in (config.strong_model, config.weak_model):
        price = prices.lookup(name)
        if price is None:
            raise dg.Failure(f"model {name!r} is not in the price table {prices.version}; cannot cost the policy")
        unit_prices[name] = (price.input_cost_per_token, price.output_cost_per_token)
    context.log.info(f"training on {feedback.height} feedback rows ({feedback['prompt'].n_unique()} prompts)")
    # config.features is a plain string in Dagster config; train_policy refuses an unknown mode by name
    policy = train_policy(
        feedback,
        config.strong_model,
        config.weak_model,
        prices=unit_prices,
        features=cast(Any, config.features),  # train_policy refuses an unknown mode by name
    )
    out = apex_data.routing_policy_path
    # a copy per version for the record, then the file the gateway watches (written last, atomically)
    write_policy(policy, apex_data.policies_path / f"routing_policy-{policy['policy_version']}.json")
    write_policy(policy, out)
    points = pl.DataFrame(policy["operating_points"])
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(out)),
            "policy_version": policy["policy_version"],
            "trained_rows": dg.MetadataValue.int(int(policy.get("trained_rows", feedback.height))),
            "operating_points": dg.MetadataValue.md(_markdown(points)),
            "default_quality_target": policy.get("default_quality_target"),
        }
    )
