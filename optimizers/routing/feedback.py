"""Routing feedback: the long ``(prompt, model, score)`` table, and the per-prompt pairs training reads from it.

Feedback is one row per prompt and model, ``score`` in [0, 1] (1 = the answer was right / as good as it gets),
with optional ``subject`` / ``benchmark`` columns. Only prompts scored for both the strong and the weak model are
used (:func:`pair_feedback`). :func:`feedback_from_routellm` turns the RouteLLM seed file into that shape.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl

__all__ = [
    "ROUTELLM_STRONG_MODEL",
    "ROUTELLM_WEAK_MODEL",
    "PairedFeedback",
    "feedback_from_routellm",
    "feedback_sha256",
    "pair_feedback",
]

# Names as litellm's price table spells them (contracts.pricing.PriceTable.lookup finds both).
ROUTELLM_STRONG_MODEL = "gpt-4-1106-preview"
ROUTELLM_WEAK_MODEL = "together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1"


def feedback_from_routellm(
    source: str | Path | pl.DataFrame,
    strong_model: str = ROUTELLM_STRONG_MODEL,
    weak_model: str = ROUTELLM_WEAK_MODEL,
) -> pl.DataFrame:
    """routellm_dev.csv rows (one per prompt, ``weak_correct``/``strong_correct``) -> long feedback rows.

    ``source`` is the CSV path or its rows already read. Columns out: prompt, model, score (1.0 right / 0.0
    wrong), subject, benchmark.
    """
    name = "<frame>" if isinstance(source, pl.DataFrame) else str(source)
    wide = source if isinstance(source, pl.DataFrame) else pl.read_csv(source, infer_schema_length=0)
    missing = {"benchmark", "subject", "prompt", "weak_correct", "strong_correct"} - set(wide.columns)
    if missing:
        raise ValueError(f"{name}: missing columns {sorted(missing)}")

    def side(column: str, model: str) -> pl.DataFrame:
        flag = pl.col(column).cast(pl.Utf8).str.to_lowercase()
        bad = wide.filter(~flag.is_in(["true", "false"]) | flag.is_null())
        if bad.height:
            raise ValueError(f"{name}: column {column!r} must be True/False, got {bad[column][0]!r}")
        return wide.select(
            pl.col("prompt").cast(pl.Utf8),
            pl.lit(model).alias("model"),
            (flag == "true").cast(pl.Float64).alias("score"),
            pl.col("subject").cast(pl.Utf8),
            pl.col("benchmark").cast(pl.Utf8),
        )

    return pl.concat([side("strong_correct", strong_model), side("weak_correct", weak_model)])


class PairedFeedback:
    """One row per prompt scored for both models: the strong and weak scores and a CV group."""

    def __init__(
        self, prompts: list[str], strong: np.ndarray, weak: np.ndarray, groups: list[str], group_column: str | None
    ) -> None:
        self.prompts = prompts
        self.strong = strong
        self.weak = weak
        self.groups = groups
        self.group_column = group_column

    def __len__(self) -> int:
        return len(self.prompts)


def pair_feedback(feedback: pl.DataFrame, strong_model: str, weak_model: str) -> PairedFeedback:
    """Average repeated (prompt, model) rows and keep prompts that both models answered."""
    missing = {"prompt", "model", "score"} - set(feedback.columns)
    if missing:
        raise ValueError(f"feedback is missing columns {sorted(missing)} (needs prompt, model, score)")
    rows = feedback.filter(pl.col("model").is_in([strong_model, weak_model]) & pl.col("score").is_not_null())
    rows = rows.with_columns(pl.col("score").cast(pl.Float64))
    out_of_range = rows.filter((pl.col("score") < 0) | (pl.col("score") > 1))
    if out_of_range.height:
        raise ValueError(f"feedback scores must be in [0, 1]; got {out_of_range['score'][0]} (normalise first)")
    group_col = next((c for c in ("subject", "benchmark") if c in rows.columns), None)
    rows = rows.with_columns((pl.col(group_col).cast(pl.Utf8) if group_col else pl.lit("", pl.Utf8)).alias("_group"))
    per_model = rows.group_by("prompt", "model").agg(pl.col("score").mean(), pl.col("_group").first().alias("group"))
    strong = per_model.filter(pl.col("model") == strong_model).select("prompt", "group", strong="score")
    weak = per_model.filter(pl.col("model") == weak_model).select("prompt", weak="score")
    paired = strong.join(weak, on="prompt", how="inner").sort("prompt")
    if paired.height < 10:
        raise ValueError(
            f"only {paired.height} prompts have feedback for both {strong_model!r} and {weak_model!r}; need >= 10"
        )
    prompts = paired["prompt"].to_list()
    groups = [g if g is not None else "" for g in paired["group"].to_list()]
    return PairedFeedback(prompts, paired["strong"].to_numpy(), paired["weak"].to_numpy(), groups, group_col)


def feedback_sha256(feedback: pl.DataFrame) -> str:
    """Hash of the feedback's content, independent of row and column order: which data trained a policy."""
    cols = sorted(feedback.columns)
    canonical = feedback.select(cols).sort(cols, nulls_last=True)
    return hashlib.sha256(canonical.write_csv().encode()).hexdigest()
