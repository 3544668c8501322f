"""The runtime half of the learned router: load a policy file and decide strong vs weak for one prompt.

A policy is a small JSON file written by ``optimizers.routing.train``: two logistic heads over the prompt's
features, one predicting the strong model's score and one the weak model's. The routing score is their difference,
``P(strong right) - P(weak right)``: the quality a call to the strong model is expected to add. A request goes to
the strong model when that score reaches the threshold of the requested quality target; the thresholds (one per
target, the operating points) were chosen out-of-fold on the training feedback, so they are the cheapest that met
each target on prompts the classifier had not seen.

The features are named by ``classifier.features``:

* ``"lexical"`` (the default): the lexical block of ``features.py`` only. ``decide`` is a few regexes and a dot
  product (tens of microseconds); the embedder is never imported, loaded or called.
* ``"embedding+lexical"``: the prompt's sentence embedding (``embedding_model``) plus the lexical block. ``decide``
  embeds the prompt (3-60 ms by length on one core) unless the caller passes its vector.

Everything needed at decision time is in the file (weights, feature scaling, thresholds); loading validates every
field and names the file and the field it rejects.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from contracts.policies import ROUTING_POLICY_KIND, ROUTING_POLICY_SCHEMA, PolicyFileError, read_policy_file
from optimizers.routing.features import LEXICAL_FEATURES, lexical_features, lexical_matrix

__all__ = [
    "CLASSIFIER_TYPE",
    "EMBEDDING_FEATURES",
    "FEATURE_MODES",
    "LEXICAL_ONLY",
    "POLICY_KIND",
    "POLICY_SCHEMA",
    "URGENCY_LEVELS",
    "OperatingPoint",
    "PolicyFileError",
    "RoutingDecision",
    "RoutingPolicy",
]

POLICY_KIND = ROUTING_POLICY_KIND
POLICY_SCHEMA = ROUTING_POLICY_SCHEMA
CLASSIFIER_TYPE = "two_head_logistic"
# classifier.features: which inputs the heads read (see the module docstring).
LEXICAL_ONLY = "lexical"
EMBEDDING_FEATURES = "embedding+lexical"
FEATURE_MODES = (LEXICAL_ONLY, EMBEDDING_FEATURES)
# urgency -> how the quality target is picked (see RoutingPolicy.decide).
URGENCY_LEVELS = ("low", "normal", "high")

Tier = Literal["strong", "weak"]
FeatureMode = Literal["lexical", "embedding+lexical"]


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """One point of the training Pareto front: the cheapest threshold that met ``quality_target``."""

    quality_target: float
    threshold: float
    expected_quality: float
    expected_strong_share: float
    expected_cost_per_1k_requests_usd: float | None


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """What ``decide`` chose and why. ``reason`` is ASCII: the gateway sends it in a response header (latin-1)."""

    tier: Tier
    score: float
    threshold: float
    quality_target: float
    reason: str
    policy_version: str


def _logistic(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function, without overflow warnings


class _Validator:
    """Field checks that raise ``PolicyFileError`` naming the source and the dotted field path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, problem: str) -> PolicyFileError:
        return PolicyFileError(f"routing policy {self.source}: field {field!r} {problem}")

    def get(self, data: Mapping[str, Any], key: str, path: str = "") -> Any:
        field = f"{path}{key}"
        if not isinstance(data, Mapping):
            raise self.fail(path.rstrip(".") or "<root>", "must be an object")
        if key not in data:
            raise self.fail(field, "is missing")
        return data[key]

    def text(self, data: Mapping[str, Any], key: str, path: str = "") -> str:
        value = self.get(data, key, path)
        if not isinstance(value, str) or not value:
            raise self.fail(f"{path}{key}", f"must be a non-empty string, got {value!r}")
        return value

    def number(self, data: Mapping[str, Any], key: str, path: str = "", *, optional: bool = False) -> float | None:
        value = self.get(data, key, path)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(f"{path}{key}", f"must be a finite number, got {value!r}")
        return float(value)

    def vector(self, data: Mapping[str, Any], key: str, length: int, path: str = "") -> np.ndarray:
        value = self.get(data, key, path)
        if not isinstance(value, list) or len(value) != length:
            got = len(value) if isinstance(value, list) else type(value).__name__
            raise self.fail(f"{path}{key}", f"must be a list of {length} numbers, got {got}")
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise self.fail(f"{path}{key}", "must contain only numbers") from None
        if arr.ndim != 1 or not np.isfinite(arr).all():
            raise self.fail(f"{path}{key}", "must contain only finite numbers")
        return arr


class RoutingPolicy:
    """A loaded, validated routing policy. Build with ``load(path)`` or ``from_dict(policy)``."""

    def __init__(self, data: Mapping[str, Any], source: str = "<dict>") -> None:
        v = _Validator(source)
        if v.get(data, "kind") != POLICY_KIND:
            raise v.fail("kind", f"must be {POLICY_KIND!r}, got {data.get('kind')!r}")
        if v.get(data, "schema") != POLICY_SCHEMA:
            raise v.fail("schema", f"must be {POLICY_SCHEMA} (this code's version), got {data.get('schema')!r}")
        self.source = source
        self.policy_version = v.text(data, "policy_version")
        clf = v.get(data, "classifier")
        features = v.get(clf, "features", "classifier.")
        if features not in FEATURE_MODES:
            raise v.fail("classifier.features", f"must be one of {list(FEATURE_MODES)}, got {features!r}")
        self.features: FeatureMode = features
        self.embedding_model: str | None = None
        dimension = 0
        if self.uses_embedding:
            # Imported only here: a lexical policy never touches the embedding module.
            from optimizers.embeddings import DIMENSION, MODEL_ID

            self.embedding_model = v.text(data, "embedding_model")
            if self.embedding_model != MODEL_ID:
                raise v.fail(
                    "embedding_model", f"is {self.embedding_model!r} but this gateway embeds with {MODEL_ID!r}"
                )
            dimension = DIMENSION
        elif data.get("embedding_model") is not None:
            raise v.fail("embedding_model", f"must be absent when classifier.features is {LEXICAL_ONLY!r}")
        self.strong_model = v.text(data, "strong_model")
        self.weak_model = v.text(data, "weak_model")
        self._read_classifier(v, clf, dimension)
        self.operating_points = self._read_operating_points(v, data)
        self.default_quality_target = self._read_default_target(v, data)
        self.data = dict(data)

    @property
    def uses_embedding(self) -> bool:
        """True when ``decide`` needs the prompt's embedding (computed on the request path unless passed in)."""
        return self.features == EMBEDDING_FEATURES

    @classmethod
    def load(cls, path: str | Path) -> RoutingPolicy:
        return cls(read_policy_file(path, "routing policy"), str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> RoutingPolicy:
        return cls(data, source)

    # -- reading -------------------------------------------------------------------------------------------------

    def _read_classifier(self, v: _Validator, clf: Mapping[str, Any], dimension: int) -> None:
        """Weights as ``[features, 2]`` matrices (column 0 the strong head, 1 the weak one) and the scaling.

        ``dimension`` is the embedding size, 0 for a lexical policy (whose file must then carry no embedding
        weights: a file that mixes the two modes is refused rather than half-used).
        """
        if v.get(clf, "type", "classifier.") != CLASSIFIER_TYPE:
            raise v.fail("classifier.type", f"must be {CLASSIFIER_TYPE!r}, got {clf.get('type')!r}")
        lexical_only = f"must be absent when classifier.features is {LEXICAL_ONLY!r}"
        if dimension:
            if v.get(clf, "embedding_dim", "classifier.") != dimension:
                raise v.fail("classifier.embedding_dim", f"must be {dimension}, got {clf.get('embedding_dim')!r}")
        elif "embedding_dim" in clf:
            raise v.fail("classifier.embedding_dim", lexical_only)
        names = v.get(clf, "lexical_features", "classifier.")
        if names != list(LEXICAL_FEATURES):
            raise v.fail(
                "classifier.lexical_features",
                f"lists {names!r} but this code computes {list(LEXICAL_FEATURES)!r}; retrain the policy",
            )
        k = len(LEXICAL_FEATURES)
        self._mean = v.vector(clf, "lexical_mean", k, "classifier.")
        self._scale = v.vector(clf, "lexical_scale", k, "classifier.")
        if (self._scale <= 0).any():
            raise v.fail("classifier.lexical_scale", "must be positive")
        heads = v.get(clf, "heads", "classifier.")
        lexical, embedding, bias = [], [], []
        for name in ("strong", "weak"):
            path = f"classifier.heads.{name}."
            head = v.get(heads, name, "classifier.heads.")
            lexical.append(v.vector(head, "lexical_weights", k, path))  # also checks that the head is an object
            if dimension:
                embedding.append(v.vector(head, "embedding_weights", dimension, path))
            elif "embedding_weights" in head:
                raise v.fail(f"{path}embedding_weights", lexical_only)
            bias.append(float(v.number(head, "bias", path) or 0.0))
        self._lexical_weights = np.column_stack(lexical)
        self._embedding_weights = np.column_stack(embedding) if dimension else None
        self._bias = np.asarray(bias)

    @staticmethod
    def _read_operating_points(v: _Validator, data: Mapping[str, Any]) -> tuple[OperatingPoint, ...]:
        raw = v.get(data, "operating_points")
        if not isinstance(raw, list) or not raw:
            raise v.fail("operating_points", "must be a non-empty list")
        points = []
        for i, item in enumerate(raw):
            path = f"operating_points[{i}]."
            target = v.number(item, "quality_target", path)
            assert target is not None
            if not 0.0 < target <= 1.0:
                raise v.fail(f"{path}quality_target", f"must be in (0, 1], got {target}")
            points.append(
                OperatingPoint(
                    quality_target=target,
                    threshold=float(v.number(item, "threshold", path) or 0.0),
                    expected_quality=float(v.number(item, "expected_quality", path) or 0.0),
                    expected_strong_share=float(v.number(item, "expected_strong_share", path) or 0.0),
                    expected_cost_per_1k_requests_usd=v.number(
                        item, "expected_cost_per_1k_requests_usd", path, optional=True
                    ),
                )
            )
        points.sort(key=lambda p: p.quality_target)
        if len({p.quality_target for p in points}) != len(points):
            raise v.fail("operating_points", "has two points with the same quality_target")
        return tuple(points)

    def _read_default_target(self, v: _Validator, data: Mapping[str, Any]) -> float:
        target = v.number(data, "default_quality_target")
        if not any(abs(p.quality_target - float(target or 0)) < 1e-9 for p in self.operating_points):
            raise v.fail("default_quality_target", f"is {target} but no operating point has that quality_target")
        return float(target or 0)

    # -- scoring -------------------------------------------------------------------------------------------------

    def score_many(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> np.ndarray:
        """Routing scores for many prompts.

        ``vectors``: their embeddings, for an ``embedding+lexical`` policy (computed here when omitted); a lexical
        policy ignores them.
        """
        z = ((lexical_matrix(texts) - self._mean) / self._scale) @ self._lexical_weights + self._bias
        if self._embedding_weights is not None:
            z = z + self._embedding(texts, vectors) @ self._embedding_weights
        p = _logistic(z)
        return p[:, 0] - p[:, 1]

    def _embedding(self, texts: Sequence[str], vectors: np.ndarray | None) -> np.ndarray:
        assert self._embedding_weights is not None
        if vectors is None:
            from optimizers.embeddings import get_embedder

            vectors = get_embedder().encode(list(texts))
        vectors = np.asarray(vectors, dtype=np.float64).reshape(len(texts), -1)
        dim = self._embedding_weights.shape[0]
        if vectors.shape[1] != dim:
            raise ValueError(
                f"embedding vectors have {vectors.shape[1]} dims; this policy expects {dim} ({self.embedding_model})"
            )
        return vectors

    def score(self, prompt_text: str, *, vector: np.ndarray | None = None) -> float:
        """``P(strong right) - P(weak right)`` for one prompt: the quality the strong model is expected to add.

        ``vector``: the prompt's embedding if the caller has it (used by an ``embedding+lexical`` policy only).
        """
        z = ((lexical_features(prompt_text) - self._mean) / self._scale) @ self._lexical_weights + self._bias
        if self._embedding_weights is not None:
            vectors = None if vector is None else np.asarray(vector).reshape(1, -1)
            z = z + self._embedding([prompt_text], vectors)[0] @ self._embedding_weights
        p = _logistic(z)
        return float(p[0] - p[1])

    # -- deciding ------------------------------------------------------------------------------------------------

    def operating_point(self, quality_target: float) -> OperatingPoint | None:
        """The cheapest point whose target is at least ``quality_target`` (None if none reaches it)."""
        if not 0.0 < quality_target <= 1.0:
            raise ValueError(f"quality_target must be in (0, 1], got {quality_target}")
        for point in self.operating_points:  # sorted by target, so the first that reaches it is the cheapest
            if point.quality_target >= quality_target - 1e-9:
                return point
        return None

    def resolve_target(self, quality_target: float | None, urgency: str | None) -> float | None:
        """The quality target a request asks for; None means "always strong" (urgency 'high').

        Mapping: 'high' -> strong model, whatever the score (urgent or critical calls should not risk the weak
        model); 'low' -> the lowest target in the policy (cheapest), unless an explicit ``quality_target`` is
        given; 'normal' or no urgency -> ``quality_target`` or the policy's default.
        """
        if urgency is not None and urgency not in URGENCY_LEVELS:
            raise ValueError(f"urgency must be one of {URGENCY_LEVELS}, got {urgency!r}")
        if urgency == "high":
            return None
        if quality_target is not None:
            return float(quality_target)
        if urgency == "low":
            return self.operating_points[0].quality_target
        return self.default_quality_target

    def decide(
        self,
        prompt_text: str,
        *,
        quality_target: float | None = None,
        urgency: str | None = None,
        vector: np.ndarray | None = None,
    ) -> RoutingDecision:
        """Strong or weak for this prompt at the requested quality target (see ``resolve_target``).

        ``vector``: the prompt's embedding, if the caller already has it; only an ``embedding+lexical`` policy
        uses it (and embeds the prompt itself when it is omitted).
        """
        target = self.resolve_target(quality_target, urgency)
        if target is None:
            # Urgent calls skip the embedding (the slow part) unless the caller already has the vector; a lexical
            # score costs microseconds, so it is always computed (for the record).
            scored = vector is not None or not self.uses_embedding
            score = self.score(prompt_text, vector=vector) if scored else float("nan")
            reason = "urgency high -> strong" + (f" (score {score:.3f})" if scored else "")
            top = self.operating_points[-1].quality_target
            return RoutingDecision("strong", score, -1.0, top, reason, self.policy_version)
        score = self.score(prompt_text, vector=vector)
        point = self.operating_point(target)
        if point is None:
            reason = f"no operating point reaches target {target:.2f} -> strong"
            return RoutingDecision("strong", score, -1.0, target, reason, self.policy_version)
        strong = score >= point.threshold
        tier: Tier = "strong" if strong else "weak"
        sign = ">=" if strong else "<"
        reason = f"score {score:.3f} {sign} {point.threshold:.3f} at target {point.quality_target:.2f} -> {tier}"
        return RoutingDecision(tier, score, point.threshold, point.quality_target, reason, self.policy_version)
