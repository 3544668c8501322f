"""The optimizers' one logistic-regression fitter: L2-regularised, soft labels, Newton's method, optional signs.

Both learned optimizers are small logistic models: the routing heads (:mod:`optimizers.routing.classifier`) and
the cache verifier (:mod:`optimizers.verify`, refitted by ``bench/cache_quality.py --fit``). At their sizes (up to
~10k rows x ~400 columns) Newton's method converges in a handful of steps with no learning rate to tune, so numpy
is all it takes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["LogisticFit", "fit_logistic", "sigmoid"]


class LogisticFit(NamedTuple):
    """``P(y = 1 | x) = sigmoid(x @ weights + bias)``. A tuple, so ``w, b = fit_logistic(...)`` works."""

    weights: np.ndarray
    bias: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        return sigmoid(x @ self.weights + self.bias)


def sigmoid(z: np.ndarray) -> np.ndarray:
    # The tanh form cannot overflow, unlike 1 / (1 + exp(-z)) for very negative z.
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    *,
    l2: float | np.ndarray = 1.0,
    signs: np.ndarray | None = None,
    max_iter: int = 50,
    tol: float = 1e-8,
) -> LogisticFit:
    """Minimise ``sum(log-loss(y, p)) + sum(l2 * weights**2) / 2``; the bias is free and not penalised.

    ``y``: labels in [0, 1] (soft labels allowed). ``l2``: one penalty, or one per column of ``x`` (note: on the
    *summed* loss; a per-row penalty on the mean loss is ``l2 = penalty * len(y)``). ``signs[j]`` = +1 / -1 requires
    weight j to be >= 0 / <= 0 (0: free); they are handled by a small active-set loop: a weight that comes out
    with the wrong sign is pinned at 0 and the rest refitted, and a pinned weight is released again when the
    gradient says moving it the allowed way would lower the loss. ``max_iter`` and ``tol`` bound each Newton solve
    (it stops when no coefficient moves by more than ``tol``). Raises ``FloatingPointError`` if the fit diverges.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    d = x.shape[1]
    penalty = np.broadcast_to(np.asarray(l2, dtype=np.float64), (d,))
    if signs is None:
        weights, bias = _newton(x, y, penalty, max_iter, tol)
        return LogisticFit(weights, bias)
    signs = np.asarray(signs, dtype=np.float64)
    free = np.ones(d, dtype=bool)
    weights, bias = np.zeros(d), 0.0
    for _ in range(4 * d + 4):
        w_free, bias = _newton(x[:, free], y, penalty[free], max_iter, tol)
        weights = np.zeros(d)
        weights[free] = w_free
        wrong = np.flatnonzero(free & (weights * signs < -1e-12))
        if wrong.size:
            free[wrong[np.argmin(weights[wrong] * signs[wrong])]] = False
            continue
        descent = -(x.T @ (sigmoid(x @ weights + bias) - y)) * signs  # > 0: the loss falls moving the allowed way
        release = np.flatnonzero(~free & (descent > 1e-6 * len(y)))
        if not release.size:
            break
        free[release[np.argmax(descent[release])]] = True
    return LogisticFit(weights, bias)


def _newton(x: np.ndarray, y: np.ndarray, penalty: np.ndarray, max_iter: int, tol: float) -> tuple[np.ndarray, float]:
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    reg = np.append(penalty, 0.0)
    beta = np.zeros(d + 1)
    prior = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))
    beta[-1] = np.log(prior / (1 - prior))  # start at the base rate: fewer steps than from 0
    for _ in range(max_iter):
        p = sigmoid(xb @ beta)
        grad = xb.T @ (p - y) + reg * beta
        hess = (xb * (p * (1 - p))[:, None]).T @ xb
        hess[np.diag_indices_from(hess)] += reg + 1e-9
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < tol:
            break
    if not np.isfinite(beta).all():
        raise FloatingPointError("logistic fit diverged; use a larger L2 penalty")
    return beta[:-1], float(beta[-1])
