"""The verifier's logistic model: its weights file (:class:`VerifierWeights`) and pair scoring (:class:`Verifier`).

The weights live in ``optimizers/verify_weights.json``, written by ``bench/cache_quality.py --fit`` with
:func:`optimizers.logistic.fit_logistic` under the sign constraints of :data:`FEATURE_SIGNS`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optimizers.verify.pair_features import FEATURE_NAMES, pair_features
from optimizers.verify.text import Analysis, analyse

__all__ = ["FEATURE_SIGNS", "WEIGHTS_PATH", "Verifier", "VerifierWeights"]

# Beside the package rather than in it: bench/README.md and the refit notes name this path.
WEIGHTS_PATH = Path(__file__).resolve().parent.parent / "verify_weights.json"


@dataclass(frozen=True)
class VerifierWeights:
    """Logistic model over :data:`FEATURE_NAMES`: score = sigmoid(bias + weights · features)."""

    weights: tuple[float, ...]
    bias: float
    default_threshold: float
    default_similarity: float
    notes: str = ""

    @classmethod
    def load(cls, path: Path = WEIGHTS_PATH) -> VerifierWeights:
        """Weights by feature name. A feature the file does not know gets weight 0 (the model ignores it, so a new
        feature can be added before the refit); a feature this code does not compute is an error."""
        raw = json.loads(path.read_text())
        by_name = dict(zip(raw["features"], (float(w) for w in raw["weights"]), strict=True))
        unknown = set(by_name) - set(FEATURE_NAMES)
        if unknown:
            raise ValueError(f"{path}: weights for features this code does not compute: {sorted(unknown)}")
        return cls(
            weights=tuple(by_name.get(name, 0.0) for name in FEATURE_NAMES),
            bias=float(raw["bias"]),
            default_threshold=float(raw["default_verify_threshold"]),
            default_similarity=float(raw["default_similarity_threshold"]),
            notes=str(raw.get("notes", "")),
        )

    def dump(self, path: Path = WEIGHTS_PATH) -> None:
        path.write_text(
            json.dumps(
                {
                    "features": list(FEATURE_NAMES),
                    "weights": [round(w, 6) for w in self.weights],
                    "bias": round(self.bias, 6),
                    "default_similarity_threshold": self.default_similarity,
                    "default_verify_threshold": self.default_threshold,
                    "notes": self.notes,
                },
                indent=2,
            )
            + "\n"
        )


class Verifier:
    """Scores (query, candidate) pairs in [0, 1]; higher = more likely the same question."""

    def __init__(self, weights: VerifierWeights | None = None) -> None:
        self.params = weights or VerifierWeights.load()
        self._w = np.asarray(self.params.weights, dtype=np.float64)

    def score(self, query: str, candidate: str, cosine: float) -> float:
        return self.score_analysed(analyse(query), analyse(candidate), cosine)

    def score_analysed(self, query: Analysis, candidate: Analysis, cosine: float) -> float:
        z = self.params.bias + float(self._w @ pair_features(query, candidate, cosine))
        return 1.0 / (1.0 + math.exp(-z))


# The direction each feature may push the score: more similarity may only raise it, a mismatch may only lower it.
# QQP's negatives were picked for high word overlap, so on that data "more unmatched words" *raises* the duplicate
# rate at a given cosine; an unconstrained fit learns that and then scores long, loosely related texts higher the
# more they differ. The constraint keeps the model meaningful off its training data.
FEATURE_SIGNS = {name: -1 for name in FEATURE_NAMES} | {
    "cosine": 1,
    "cosine_over_0.90": 1,
    "cosine_over_0.95": 1,
    "shared": 1,
}
