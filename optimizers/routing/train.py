"""Train a routing policy (strong vs weak model) from routing feedback, and write it as a versioned JSON file.

Feedback is a long table ``(prompt, model, score)`` — one row per prompt and model, ``score`` in [0, 1] (1 = the
answer was right / as good as it gets) — with optional ``subject`` / ``benchmark`` columns. Only prompts scored for
both the strong and the weak model are used.

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
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import polars as pl

from optimizers.routing.features import LEXICAL_FEATURES, lexical_matrix
from optimizers.routing.policy import (
    CLASSIFIER_TYPE,
    EMBEDDING_FEATURES,
    FEATURE_MODES,
    LEXICAL_ONLY,
    POLICY_KIND,
    POLICY_SCHEMA,
)

__all__ = [
    "DEFAULT_FEATURES",
    "DEFAULT_OUTPUT_TOKENS",
    "DEFAULT_QUALITY_TARGETS",
    "ROUTELLM_STRONG_MODEL",
    "ROUTELLM_WEAK_MODEL",
    "Embed",
    "PairedFeedback",
    "feedback_from_routellm",
    "fit_logistic",
    "group_folds",
    "pair_feedback",
    "request_costs",
    "routed_quality_curve",
    "train_policy",
    "write_policy",
]

Embed = Callable[[list[str]], np.ndarray]
Features = Literal["lexical", "embedding+lexical"]

# Names as litellm's price table spells them (gateway.pricing.PriceTable.lookup finds both).
ROUTELLM_STRONG_MODEL = "gpt-4-1106-preview"
ROUTELLM_WEAK_MODEL = "together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1"

DEFAULT_QUALITY_TARGETS = (0.90, 0.95, 0.98, 1.0)
DEFAULT_QUALITY_TARGET = 0.95
# Completion length assumed when pricing a request: the feedback has prompts, not answers. A short chat answer.
DEFAULT_OUTPUT_TOKENS = 200
DEFAULT_CV_FOLDS = 5
DEFAULT_FEATURES: Features = "lexical"
# L2 penalty per training row (the objective is the mean log-loss plus these times the squared weights / 2).
# Measured on subject-grouped CV of the dev file (embedding+lexical): weaker penalties fit subject identity and
# lose on held-out subjects; the embedding columns are ~20x smaller in scale than the standardised lexical ones, so
# even this lighter per-unit penalty shrinks them harder. The lexical-only mode uses the same lexical penalty.
EMBEDDING_PENALTY = 0.01
LEXICAL_PENALTY = 0.04


# -- feedback ----------------------------------------------------------------------------------------------------


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


# -- classifier --------------------------------------------------------------------------------------------------


def fit_logistic(x: np.ndarray, y: np.ndarray, penalty: np.ndarray, max_iter: int = 30) -> np.ndarray:
    """L2-regularised logistic regression with soft labels, by Newton's method; returns ``[weights..., bias]``.

    Objective: mean log-loss + ``sum(penalty * w**2) / 2`` (the bias is not penalised). Newton converges in a
    handful of steps at this size (a 400x400 solve per step), with no learning rate to tune.
    """
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    reg = np.append(np.asarray(penalty, dtype=np.float64), 0.0) * n
    beta = np.zeros(d + 1)
    prior = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))
    beta[-1] = np.log(prior / (1 - prior))
    for _ in range(max_iter):
        p = 0.5 * (1.0 + np.tanh(0.5 * (xb @ beta)))
        grad = xb.T @ (p - y) + reg * beta
        hess = (xb * (p * (1 - p))[:, None]).T @ xb
        hess[np.diag_indices_from(hess)] += reg + 1e-9
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-6:
            break
    if not np.isfinite(beta).all():
        raise FloatingPointError("logistic fit diverged; use a larger L2 penalty")
    return beta


class _Scaler:
    def __init__(self, lexical: np.ndarray) -> None:
        self.mean = lexical.mean(axis=0)
        # Constant features (e.g. no prompt has code) get scale 1 so they stay 0 instead of dividing by zero.
        std = lexical.std(axis=0)
        self.scale = np.where(std > 1e-9, std, 1.0)

    def __call__(self, lexical: np.ndarray) -> np.ndarray:
        return (lexical - self.mean) / self.scale


def fit_heads(
    vectors: np.ndarray | None,
    lexical: np.ndarray,
    strong: np.ndarray,
    weak: np.ndarray,
    *,
    embedding_penalty: float = EMBEDDING_PENALTY,
    lexical_penalty: float = LEXICAL_PENALTY,
) -> dict[str, Any]:
    """Fit both heads; returns the policy's ``classifier`` block (scaling and weights as lists).

    ``vectors``: the prompts' embeddings for an ``embedding+lexical`` classifier, or None for a lexical one (whose
    block has no embedding fields at all).
    """
    scaler = _Scaler(lexical)
    scaled = scaler(lexical)
    dim = 0 if vectors is None else vectors.shape[1]
    x = scaled if vectors is None else np.hstack([vectors, scaled])
    penalty = np.concatenate([np.full(dim, embedding_penalty), np.full(lexical.shape[1], lexical_penalty)])
    heads = {}
    for name, y in (("strong", strong), ("weak", weak)):
        beta = fit_logistic(x, y, penalty)
        head: dict[str, Any] = {"embedding_weights": _rounded(beta[:dim])} if dim else {}
        head["lexical_weights"] = _rounded(beta[dim:-1])
        head["bias"] = float(f"{beta[-1]:.8g}")
        heads[name] = head
    block: dict[str, Any] = {
        "type": CLASSIFIER_TYPE,
        "features": EMBEDDING_FEATURES if dim else LEXICAL_ONLY,
        "score": "P(strong right) - P(weak right)",
    }
    if dim:
        block["embedding_dim"] = dim
    block |= {
        "lexical_features": list(LEXICAL_FEATURES),
        "lexical_mean": _rounded(scaler.mean),
        "lexical_scale": _rounded(scaler.scale),
        "heads": heads,
        "penalty_per_row": ({"embedding": embedding_penalty} if dim else {}) | {"lexical": lexical_penalty},
    }
    return block


def score_with(classifier: dict[str, Any], vectors: np.ndarray | None, lexical: np.ndarray) -> np.ndarray:
    """Routing scores from a ``classifier`` block (the same arithmetic as ``RoutingPolicy.score_many``).

    ``vectors`` is ignored by a lexical classifier (pass None).
    """
    x = (lexical - np.asarray(classifier["lexical_mean"])) / np.asarray(classifier["lexical_scale"])
    if classifier["features"] != EMBEDDING_FEATURES:
        vectors = None
    elif vectors is None:
        raise ValueError("this classifier reads embeddings: pass the prompts' vectors")
    probs = []
    for name in ("strong", "weak"):
        head = classifier["heads"][name]
        z = x @ np.asarray(head["lexical_weights"]) + head["bias"]
        if vectors is not None:
            z = z + vectors @ np.asarray(head["embedding_weights"])
        probs.append(0.5 * (1.0 + np.tanh(0.5 * z)))
    return probs[0] - probs[1]


def _rounded(values: np.ndarray) -> list[float]:
    """7 significant digits: keeps the file ~25 KB; scores move by < 1e-6."""
    return [float(f"{v:.7g}") for v in np.asarray(values, dtype=np.float64)]


# -- folds and thresholds ----------------------------------------------------------------------------------------


def group_folds(groups: Sequence[str], keys: Sequence[str], k: int, seed: int = 0) -> np.ndarray:
    """Fold index per row: whole groups per fold (balanced by rows) when there are >= k groups, else by key hash.

    Grouping by subject makes the out-of-fold scores those of unseen subjects, which is what thresholds must
    survive in production; hashing the prompt keeps duplicates of one prompt in one fold.
    """
    labels = np.asarray([str(g) for g in groups])
    names, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if len(names) >= k:
        rng = np.random.default_rng(seed)
        load = np.zeros(k)
        fold_of = np.zeros(len(names), dtype=np.int64)
        for i in rng.permutation(len(names)):
            fold_of[i] = int(np.argmin(load))
            load[fold_of[i]] += counts[i]
        return fold_of[inverse]
    digests = [hashlib.sha256(f"{seed}:{key}".encode()).digest() for key in keys]
    return np.array([int.from_bytes(d[:4], "big") % k for d in digests], dtype=np.int64)


def routed_quality_curve(scores: np.ndarray, strong: np.ndarray, weak: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted scores (highest first) and mean quality when the top ``i`` prompts go strong, for i = 0..n."""
    order = np.argsort(-scores, kind="stable")
    gain = (strong - weak)[order]
    quality = (weak.sum() + np.concatenate([[0.0], np.cumsum(gain)])) / len(scores)
    return scores[order], quality


def _threshold_for(sorted_scores: np.ndarray, k: int) -> float:
    """A score threshold sending the top ``k`` prompts strong (rule: strong iff score >= threshold).

    The threshold sits halfway between the k-th score and the next lower one, so an unseen prompt scoring a hair
    below a training score is treated like it. When the k-th score is tied with the ones after it, they all go
    strong anyway (the rule cannot split a tie), so the halfway point is to the next *distinct* lower score, or
    everything when there is none (e.g. saturated scores when the weak model was always wrong).
    """
    if k == 0:
        return 1.0  # scores are P - P < 1: nothing reaches it
    if k == len(sorted_scores):
        return -1.0
    hi = float(sorted_scores[k - 1])
    lower = sorted_scores[k:][sorted_scores[k:] < hi]  # still sorted, highest first
    return (hi + float(lower[0])) / 2 if lower.size else -1.0


def request_costs(
    prompts: Sequence[str], model: str, price: tuple[float, float] | None, output_tokens: int
) -> np.ndarray | None:
    """USD per request for each prompt on ``model``: prompt tokens x input price + assumed output x output price."""
    if price is None:
        return None
    from gateway.tokens import count_text_tokens

    tokens = np.array([count_text_tokens(p, model) for p in prompts], dtype=np.float64)
    return tokens * price[0] + output_tokens * price[1]


def operating_points(
    scores: np.ndarray,
    strong: np.ndarray,
    weak: np.ndarray,
    targets: Sequence[float],
    cost_strong: np.ndarray | None,
    cost_weak: np.ndarray | None,
) -> list[dict[str, Any]]:
    """For each target: the cheapest threshold whose routed quality reaches ``target x strong quality``.

    "Cheapest" is fewest strong calls; the first point of the quality curve that reaches the target is taken, so
    a higher target can only move the threshold down (more strong calls): the front is monotone by construction.
    """
    sorted_scores, quality = routed_quality_curve(scores, strong, weak)
    strong_quality = float(strong.mean())
    points = []
    for target in sorted(targets):
        reached = np.flatnonzero(quality >= target * strong_quality - 1e-12)
        threshold = _threshold_for(sorted_scores, int(reached[0]) if reached.size else len(scores))
        to_strong = scores >= threshold
        routed = np.where(to_strong, strong, weak).mean()
        cost = None
        if cost_strong is not None and cost_weak is not None:
            cost = round(float(np.where(to_strong, cost_strong, cost_weak).mean()) * 1000, 6)
        points.append(
            {
                "quality_target": float(target),
                "threshold": float(f"{threshold:.7g}"),
                "expected_quality": round(float(routed / strong_quality) if strong_quality else 1.0, 6),
                "expected_strong_share": round(float(to_strong.mean()), 6),
                "expected_cost_per_1k_requests_usd": cost,
            }
        )
    return points


def out_of_fold_scores(
    vectors: np.ndarray | None, lexical: np.ndarray, data: PairedFeedback, folds: np.ndarray, **penalties: float
) -> np.ndarray:
    """Each row scored by heads fitted without its fold (``vectors`` None: a lexical classifier)."""
    scores = np.zeros(len(data))
    for fold in np.unique(folds):
        test = folds == fold
        train = ~test
        v_train, v_test = (None, None) if vectors is None else (vectors[train], vectors[test])
        clf = fit_heads(v_train, lexical[train], data.strong[train], data.weak[train], **penalties)
        scores[test] = score_with(clf, v_test, lexical[test])
    return scores


# -- the policy --------------------------------------------------------------------------------------------------


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
    from gateway.pricing import PriceTable

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

    path = Path(path)
    RoutingPolicy.from_dict(policy, source=str(path))  # refuse to write a file the gateway would refuse to load
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps(policy, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the gateway may run as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
