"""The router's classifier: two L2-regularised logistic heads, ``P(strong right)`` and ``P(weak right)``.

Their difference is the routing score, the quality a strong call is expected to add. :func:`fit_heads` writes the
policy file's ``classifier`` block; :func:`score_with` is the same arithmetic as ``RoutingPolicy.score_many``, for
scoring during training. See :mod:`optimizers.routing.train` for why two heads and these penalties.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optimizers.logistic import fit_logistic
from optimizers.routing.features import LEXICAL_FEATURES
from optimizers.routing.policy import CLASSIFIER_TYPE, EMBEDDING_FEATURES, LEXICAL_ONLY

__all__ = ["EMBEDDING_PENALTY", "LEXICAL_PENALTY", "fit_heads", "score_with"]

# L2 penalty per training row (the objective is the mean log-loss plus these times the squared weights / 2).
# Measured on subject-grouped CV of the dev file (embedding+lexical): weaker penalties fit subject identity and
# lose on held-out subjects; the embedding columns are ~20x smaller in scale than the standardised lexical ones, so
# even this lighter per-unit penalty shrinks them harder. The lexical-only mode uses the same lexical penalty.
EMBEDDING_PENALTY = 0.01
LEXICAL_PENALTY = 0.04


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
        # The penalty is per row on the mean loss; the fitter's is on the summed loss.
        fit = fit_logistic(x, y, l2=penalty * len(y))
        head: dict[str, Any] = {"embedding_weights": _rounded(fit.weights[:dim])} if dim else {}
        head["lexical_weights"] = _rounded(fit.weights[dim:])
        head["bias"] = float(f"{fit.bias:.8g}")
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
