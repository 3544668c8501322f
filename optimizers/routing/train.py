"""Train a routing policy (strong vs weak model) from routing feedback, and write it as a versioned JSON file.

Feedback is a long table ``(prompt, model, score)``, see :mod:`optimizers.routing.feedback`. The pieces:
``feedback`` (the table, paired per prompt), ``classifier`` (the two logistic heads), ``thresholds`` (out-of-fold
scores -> operating points); this module puts them together into the policy file.

Method (chosen by measurement, see ``bench/routing_quality.py``; figures are subject-grouped 5-fold CV on the dev
file):

* features (``features=``): by default the lexical block of ``features.py`` alone, standardised (``"lexical"``).
  ``"embedding+lexical"`` adds the prompt's all-MiniLM-L6-v2 embedding (384 dims). On *unseen subjects* — what a
  gateway meets — the embedding adds nothing measurable: APGR 0.624 / 0.617 / 0.640 lexical vs 0.618 / 0.602 /
  0.647 with it, over three subject partitions (seeds 0-2). It helps on subjects seen in training (0.700 vs 0.691
  on row folds), but costs 13-43 ms (p50-p99) per ``decide`` on the request path against ~0.05-0.25 ms, and
  makes training embed every prompt (~5 min for the 9.4k dev prompts on one core, against ~2 s in all);
* two L2-regularised logistic regressions (Newton's method, numpy only): ``P(strong right)`` and ``P(weak right)``.
  Their difference is the routing score, the quality a strong call is expected to add. Two heads rank better than
  one "strong needed" classifier (dev APGR 0.700 vs 0.664 on row folds, 0.620 vs 0.610 over three subject
  partitions, embedding+lexical) because they also learn where the weak model is *better* (5.6 % of the dev rows);
* strong L2, heavier on the lexical block than per unit on the embedding, because what has to transfer is
  difficulty across *unseen subjects*: weaker penalties fit subject identity and lose on held-out subjects;
* thresholds: one per quality target, the cheapest (fewest strong calls) that met the target on *out-of-fold*
  scores — K folds grouped by ``subject`` when the column exists, so a threshold is tuned on prompts from subjects
  the fold's classifier never saw — then the classifier is refitted on all rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import polars as pl

from contracts.policies import write_policy_file
from optimizers.routing.classifier import EMBEDDING_PENALTY, LEXICAL_PENALTY, fit_heads
from optimizers.routing.features import lexical_matrix
from optimizers.routing.feedback import (
    ROUTELLM_STRONG_MODEL,
    ROUTELLM_WEAK_MODEL,
    feedback_from_routellm,
    feedback_sha256,
    pair_feedback,
)
from optimizers.routing.policy import EMBEDDING_FEATURES, FEATURE_MODES, POLICY_KIND, POLICY_SCHEMA
from optimizers.routing.thresholds import group_folds, operating_points, out_of_fold_scores, request_costs

__all__ = [
    "DEFAULT_FEATURES",
    "DEFAULT_OUTPUT_TOKENS",
    "DEFAULT_QUALITY_TARGETS",
    "ROUTELLM_STRONG_MODEL",  # re-exported from .feedback: dagster_project imports them from here
    "ROUTELLM_WEAK_MODEL",
    "Embed",
    "main",
    "policy_version",
    "train_policy",
    "write_policy",
]

Embed = Callable[[list[str]], np.ndarray]
Features = Literal["lexical", "embedding+lexical"]

DEFAULT_QUALITY_TARGETS = (0.90, 0.95, 0.98, 1.0)
DEFAULT_QUALITY_TARGET = 0.95
# Completion length assumed when pricing a request: the feedback has prompts, not answers. A short chat answer.
DEFAULT_OUTPUT_TOKENS = 200
DEFAULT_CV_FOLDS = 5
DEFAULT_FEATURES: Features = "lexical"


def _default_embed(texts: list[str]) -> np.ndarray:
    from optimizers.embeddings import get_embedder

    # Small batches: long prompts (256 tokens) in batches of 64 peak near 2.7 GB in onnxruntime, 16 near 0.9 GB.
    return get_embedder().encode(texts, batch_size=16)


def _prices(
    models: Sequence[str], prices: dict[str, tuple[float, float]] | None
) -> tuple[dict[str, tuple[float, float] | None], str]:
    if prices is not None:
        given = {m: (float(prices[m][0]), float(prices[m][1])) if m in prices else None for m in models}
        return given, "caller"
    from contracts.pricing import PriceTable

    table = PriceTable.from_litellm()
    found = {m: table.lookup(m) for m in models}
    return {
        m: (p.input_cost_per_token, p.output_cost_per_token) if p else None for m, p in found.items()
    }, table.version


def policy_version(policy: dict[str, Any]) -> str:
    """Content hash of everything that changes decisions or expectations (not the timestamp): same data and
    code -> same version, so a retrain that changes nothing does not look like a new policy."""
    stable = {k: v for k, v in policy.items() if k not in ("policy_version", "trained_at")}
    return "rp-" + hashlib.sha256(orjson.dumps(stable, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def train_policy(
    feedback: pl.DataFrame,
    strong_model: str,
    weak_model: str,
    *,
    prices: dict[str, tuple[float, float]] | None = None,
    quality_targets: Sequence[float] = DEFAULT_QUALITY_TARGETS,
    default_quality_target: float = DEFAULT_QUALITY_TARGET,
    output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    cv_folds: int = DEFAULT_CV_FOLDS,
    features: Features = DEFAULT_FEATURES,
    embed: Embed | None = None,
    embedding_penalty: float = EMBEDDING_PENALTY,
    lexical_penalty: float = LEXICAL_PENALTY,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the router on ``feedback`` and return the policy as a JSON-able dict (see ``write_policy``).

    ``prices``: model -> (USD per input token, USD per output token); default: litellm's price table. A model
    without a price gets ``expected_cost_per_1k_requests_usd: null``. ``features``: ``"lexical"`` (default; no
    embedding anywhere, training takes seconds) or ``"embedding+lexical"``. ``embed``: texts -> unit vectors, used
    only in the embedding mode (default: the shared local embedder; the bench passes a caching one).
    """
    if features not in FEATURE_MODES:
        raise ValueError(f"features must be one of {list(FEATURE_MODES)}, got {features!r}")
    if strong_model == weak_model:
        raise ValueError("strong_model and weak_model must differ")
    targets = sorted({float(t) for t in quality_targets} | {float(default_quality_target)})
    if not all(0.0 < t <= 1.0 for t in targets):
        raise ValueError(f"quality targets must be in (0, 1], got {targets}")
    if cv_folds < 2:
        raise ValueError("cv_folds must be >= 2: thresholds are chosen on out-of-fold scores")
    data = pair_feedback(feedback, strong_model, weak_model)
    vectors = None
    embedding_model = None
    if features == EMBEDDING_FEATURES:
        from optimizers.embeddings import MODEL_ID

        embedding_model = MODEL_ID
        vectors = np.asarray((embed or _default_embed)(data.prompts), dtype=np.float64)
    lexical = lexical_matrix(data.prompts)
    penalties = {"embedding_penalty": embedding_penalty, "lexical_penalty": lexical_penalty}

    folds = group_folds(data.groups, data.prompts, cv_folds, seed)
    oof = out_of_fold_scores(vectors, lexical, data, folds, **penalties)
    price_of, price_source = _prices([strong_model, weak_model], prices)
    cost_strong = request_costs(data.prompts, strong_model, price_of[strong_model], output_tokens)
    cost_weak = request_costs(data.prompts, weak_model, price_of[weak_model], output_tokens)
    points = operating_points(oof, data.strong, data.weak, targets, cost_strong, cost_weak)
    grouped = data.group_column is not None and len(set(data.groups)) >= cv_folds

    policy: dict[str, Any] = {
        "kind": POLICY_KIND,
        "schema": POLICY_SCHEMA,
        "policy_version": "",
    }
    if embedding_model is not None:  # a lexical policy names no embedding model: it never embeds
        policy["embedding_model"] = embedding_model
    policy |= {
        "strong_model": strong_model,
        "weak_model": weak_model,
        "classifier": fit_heads(vectors, lexical, data.strong, data.weak, **penalties),
        "operating_points": points,
        "default_quality_target": float(default_quality_target),
        "threshold_selection": {
            "method": "out-of-fold scores, cheapest threshold reaching each target",
            "folds": cv_folds,
            "grouped_by": data.group_column if grouped else "prompt hash",
        },
        "training_quality": {"strong": round(float(data.strong.mean()), 6), "weak": round(float(data.weak.mean()), 6)},
        "cost_assumptions": {
            "output_tokens": output_tokens,
            "prices_usd_per_token": {m: list(p) if p else None for m, p in price_of.items()},
            "price_source": price_source,
        },
        "trained_rows": len(data),
        "feedback_rows": feedback.height,
        "feedback_sha256": feedback_sha256(feedback),
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    policy["policy_version"] = policy_version(policy)
    return policy


def write_policy(policy: dict[str, Any], path: str | Path) -> Path:
    """Validate, then write atomically (temp file in the same directory + rename): a gateway reloading the file
    sees the old policy or the new one, never half of one."""
    from optimizers.routing.policy import RoutingPolicy

    RoutingPolicy.from_dict(policy, source=str(path))  # refuse to write a file the gateway would refuse to load
    return write_policy_file(policy, path)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m optimizers.routing.train (--routellm CSV | --feedback FILE --strong M --weak M) --out PATH
    [--features lexical|embedding+lexical]``."""
    import argparse

    parser = argparse.ArgumentParser(description="Train a routing policy and write it (atomically) to --out.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--routellm", type=Path, help="a routellm_dev.csv-format file")
    source.add_argument("--feedback", type=Path, help="a (prompt, model, score[, subject]) table, .csv or .parquet")
    parser.add_argument("--strong", default=ROUTELLM_STRONG_MODEL)
    parser.add_argument("--weak", default=ROUTELLM_WEAK_MODEL)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--output-tokens", type=int, default=DEFAULT_OUTPUT_TOKENS)
    parser.add_argument("--features", choices=FEATURE_MODES, default=DEFAULT_FEATURES)
    args = parser.parse_args(argv)
    if args.routellm:
        feedback = feedback_from_routellm(args.routellm, args.strong, args.weak)
    elif args.feedback.suffix == ".parquet":
        feedback = pl.read_parquet(args.feedback)
    else:
        feedback = pl.read_csv(args.feedback)
    policy = train_policy(feedback, args.strong, args.weak, output_tokens=args.output_tokens, features=args.features)
    write_policy(policy, args.out)
    for point in policy["operating_points"]:
        print(orjson.dumps(point).decode())
    print(f"wrote {args.out} ({policy['policy_version']}, {args.features}, {policy['trained_rows']} prompts)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
