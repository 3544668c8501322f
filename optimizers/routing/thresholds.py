"""Threshold selection: from out-of-fold routing scores to one operating point per quality target.

A threshold is tuned on *out-of-fold* scores — K folds grouped by ``subject`` when the column exists, so it is
tuned on prompts from subjects the fold's classifier never saw — and each point records the quality, strong-call
share and cost per 1k requests expected at it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from optimizers.routing.classifier import fit_heads, score_with
from optimizers.routing.feedback import PairedFeedback

__all__ = ["group_folds", "operating_points", "out_of_fold_scores", "request_costs", "routed_quality_curve"]


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
    from contracts.tokens import count_text_tokens

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
