"""Learned-router quality bench: quality vs share of strong-model calls, APGR and $ cost on unseen prompts.

Data: a CSV with columns ``benchmark,subject,prompt,weak_correct,strong_correct`` (routellm_dev.csv's format;
weak = Mixtral-8x7B-Instruct, strong = gpt-4-1106-preview).

1. Default: K-fold cross-validation BY SUBJECT on ``--data`` (whole subjects per fold, balanced by rows; GSM8K's
   'math' is one subject): each fold's router is trained with the shipped ``train_policy`` on the other subjects —
   its thresholds chosen by its own inner, subject-grouped CV — and scores the held-out subjects through
   ``RoutingPolicy.score_many``. ``--train FILE --test FILE`` does one train/test split instead; ``--split rows``
   does random row folds (subjects seen in training: the optimistic case). ``--features`` picks the policy's
   feature mode: ``lexical`` (the shipped default) or ``embedding+lexical``.
2. Reports, pooled over the test folds: quality (share of the all-strong accuracy) and $ per 1k requests at 0-100 %
   strong calls, APGR, and the operating points chosen ON THE TRAINING DATA applied to the test folds (the 95 %
   one is the headline), against all-strong, all-weak and random routing at the same strong share.
3. ``--compare`` also scores the alternatives measured to choose the method (same folds).
4. ``--timing`` also trains one policy on the whole ``--data`` file (timed) and times ``RoutingPolicy.decide`` per
   prompt (p50/p99 over the file's prompts, and over those of 1.9-2.2 KB); in the embedding mode decide embeds
   each prompt (a sample of 300), as the gateway does.

APGR (RouteLLM, Ong et al. 2024): PGR(c) = (quality(c) - weak) / (strong - weak) at strong-call share c, routing
the c highest-scored prompts strong; APGR = area under PGR over c in [0, 1] (trapezoid over every prompt count).
Random routing has APGR 0.5 in expectation. Cost: litellm's prices for the two model names below, prompt tokens
counted with ``contracts.tokens.count_text_tokens`` plus ``--output-tokens`` (200) assumed completion tokens.

Embeddings (only for ``--features embedding+lexical`` or ``--compare``) are computed here (one thread by default,
a progress bar) and memoised in ``--cache`` (default: the temp dir; keyed by text digest) so a second run skips
them. The last line printed is one JSON object.

    .venv/bin/python bench/routing_quality.py [--data FILE | --train FILE --test FILE] [--folds 5] [--seed 0]
        [--features lexical|embedding+lexical] [--split subject|rows] [--compare] [--timing] [--threads 1]
        [--cache PATH | --no-cache]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402
from _shared_data import SHARED_DATA  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from optimizers.embeddings import MODEL_ID, LocalEmbedder  # noqa: E402
from optimizers.logistic import fit_logistic  # noqa: E402
from optimizers.routing.classifier import EMBEDDING_PENALTY, LEXICAL_PENALTY, fit_heads, score_with  # noqa: E402
from optimizers.routing.features import lexical_matrix  # noqa: E402
from optimizers.routing.feedback import ROUTELLM_STRONG_MODEL, ROUTELLM_WEAK_MODEL, feedback_from_routellm  # noqa: E402
from optimizers.routing.policy import EMBEDDING_FEATURES, FEATURE_MODES, RoutingPolicy  # noqa: E402
from optimizers.routing.thresholds import group_folds, request_costs, routed_quality_curve  # noqa: E402
from optimizers.routing.train import DEFAULT_FEATURES, DEFAULT_OUTPUT_TOKENS, train_policy  # noqa: E402

DEV_FILE = SHARED_DATA / "routing" / "routellm_dev.csv"
HEADLINE_TARGET = 0.95
console = Console(stderr=True)
# Piped output (a log, CI) gets the full table width rather than rich's 80-column default.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)


# -- data and embeddings -----------------------------------------------------------------------------------------


@dataclass
class Rows:
    """One routellm row per prompt, with everything the metrics need as arrays."""

    frame: pl.DataFrame
    prompts: list[str]
    subjects: np.ndarray
    weak: np.ndarray
    strong: np.ndarray

    @classmethod
    def read(cls, path: Path) -> Rows:
        frame = pl.read_csv(path, infer_schema_length=0)
        long = feedback_from_routellm(frame)  # validates the columns and the True/False values
        n = frame.height
        strong = long["score"][:n].to_numpy()
        weak = long["score"][n:].to_numpy()
        return cls(frame, frame["prompt"].to_list(), np.array(frame["subject"].to_list()), weak, strong)

    def take(self, mask: np.ndarray) -> Rows:
        idx = np.flatnonzero(mask)
        return Rows(
            self.frame[idx], [self.prompts[i] for i in idx], self.subjects[idx], self.weak[idx], self.strong[idx]
        )


def embed_all(embedder: LocalEmbedder, texts: list[str]) -> np.ndarray:
    out_vectors = np.empty((len(texts), 384), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # length-sorted batches pad little
    step = 64
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"embedding {len(texts):,} prompts", total=len(texts))
        for start in range(0, len(order), step):
            idx = order[start : start + step]
            # Batches of 16: at 256 tokens a batch of 64 peaks near 2.7 GB RSS in onnxruntime, 16 at ~0.9 GB,
            # for the same speed.
            out_vectors[idx] = embedder.encode([texts[i] for i in idx], batch_size=16)
            progress.advance(task, len(idx))
    return out_vectors


class EmbeddingStore:
    """Text -> vector, computed once per distinct text and memoised on disk (``None``: memory only).

    The cache file is read on first use: a lexical-only run never touches it."""

    def __init__(self, threads: int, cache: Path | None) -> None:
        self.threads = threads
        self.cache = cache
        self._vectors: dict[str, np.ndarray] | None = None

    @property
    def vectors(self) -> dict[str, np.ndarray]:
        if self._vectors is None:
            self._vectors = {}
            if self.cache is not None and self.cache.is_file():
                saved = np.load(self.cache)
                self._vectors = dict(zip(saved["keys"].tolist(), saved["vectors"], strict=True))
        return self._vectors

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    def ensure(self, texts: list[str]) -> None:
        missing = sorted({t for t in texts if self.key(t) not in self.vectors})
        if not missing:
            return
        began = time.perf_counter()
        vectors = embed_all(LocalEmbedder(threads=self.threads), missing)
        console.print(f"embedded {len(missing):,} prompts in {time.perf_counter() - began:.0f} s")
        self.vectors.update(zip((self.key(t) for t in missing), vectors, strict=True))
        if self.cache is not None:
            keys = list(self.vectors)
            np.savez(self.cache, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.ensure(texts)
        return np.stack([self.vectors[self.key(t)] for t in texts]).astype(np.float64)


# -- metrics -----------------------------------------------------------------------------------------------------


def apgr(scores: np.ndarray, strong: np.ndarray, weak: np.ndarray) -> float:
    """Area under PGR(strong-call share), trapezoid over every prompt count."""
    _, quality = routed_quality_curve(scores, strong, weak)
    gap = strong.mean() - weak.mean()
    pgr = (quality - weak.mean()) / gap
    return float(((pgr[1:] + pgr[:-1]) / 2).sum() / len(scores))


def random_apgr(strong: np.ndarray, weak: np.ndarray, draws: int = 20, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    return float(np.mean([apgr(rng.random(len(strong)), strong, weak) for _ in range(draws)]))


def share_needed(scores: np.ndarray, strong: np.ndarray, weak: np.ndarray, target: float) -> float:
    """Smallest strong share whose quality reaches ``target`` x strong on this curve (an oracle threshold)."""
    _, quality = routed_quality_curve(scores, strong, weak)
    return float(np.argmax(quality >= target * strong.mean() - 1e-12) / len(scores))


@dataclass
class Fold:
    name: str
    test: Rows
    scores: np.ndarray
    thresholds: dict[float, float]  # quality target -> threshold chosen on the fold's training data
    expected: dict[float, tuple[float, float]]  # target -> (expected quality, expected strong share) on training


@dataclass
class Pooled:
    """The test folds concatenated, with the per-request cost on each model."""

    rows: Rows
    scores: np.ndarray
    cost_strong: np.ndarray
    cost_weak: np.ndarray

    @property
    def strong_quality(self) -> float:
        return float(self.rows.strong.mean())

    def routed(self, to_strong: np.ndarray) -> tuple[float, float, float]:
        """(quality as share of all-strong, strong share, $ per 1k requests) for a routing."""
        quality = np.where(to_strong, self.rows.strong, self.rows.weak).mean() / self.strong_quality
        cost = np.where(to_strong, self.cost_strong, self.cost_weak).mean() * 1000
        return float(quality), float(to_strong.mean()), float(cost)

    def random_quality(self, share: float) -> float:
        """Expected quality of routing a random ``share`` of requests strong."""
        r = self.rows
        return float((share * r.strong.mean() + (1 - share) * r.weak.mean()) / self.strong_quality)


# -- the shipped router ------------------------------------------------------------------------------------------


def needs_embeddings(args: argparse.Namespace) -> bool:
    return args.features == EMBEDDING_FEATURES or args.compare


def splits(args: argparse.Namespace, store: EmbeddingStore) -> list[tuple[str, Rows, Rows]]:
    if args.train or args.test:
        if not (args.train and args.test):
            raise SystemExit("--train and --test go together")
        train, test = Rows.read(args.train), Rows.read(args.test)
        if needs_embeddings(args):
            store.ensure(train.prompts + test.prompts)
        return [(f"{args.train.name} → {args.test.name}", train, test)]
    rows = Rows.read(args.data)
    if needs_embeddings(args):
        store.ensure(rows.prompts)
    groups = rows.subjects.tolist() if args.split == "subject" else rows.prompts
    folds = group_folds(groups, rows.prompts, args.folds, seed=args.seed)
    out_splits = []
    for f in range(args.folds):
        held = sorted(set(rows.subjects[folds == f]))
        label = f"fold {f + 1}: {len(held)} subjects" if args.split == "subject" else f"fold {f + 1}"
        out_splits.append((label, rows.take(folds != f), rows.take(folds == f)))
    return out_splits


def run_fold(label: str, train: Rows, test: Rows, store: EmbeddingStore, args: argparse.Namespace) -> Fold:
    policy_dict = train_policy(
        feedback_from_routellm(train.frame),
        ROUTELLM_STRONG_MODEL,
        ROUTELLM_WEAK_MODEL,
        output_tokens=args.output_tokens,
        cv_folds=args.folds,
        features=args.features,
        embed=store,
        seed=args.seed,
    )
    policy = RoutingPolicy.from_dict(policy_dict, source=f"<{label}>")
    scores = policy.score_many(test.prompts, store(test.prompts) if policy.uses_embedding else None)
    thresholds = {p.quality_target: p.threshold for p in policy.operating_points}
    expected = {p.quality_target: (p.expected_quality, p.expected_strong_share) for p in policy.operating_points}
    return Fold(label, test, scores, thresholds, expected)


def pool(folds: list[Fold], output_tokens: int) -> Pooled:
    from contracts.pricing import PriceTable

    table = PriceTable.from_litellm()
    rows = Rows(
        pl.concat([f.test.frame for f in folds]),
        [p for f in folds for p in f.test.prompts],
        np.concatenate([f.test.subjects for f in folds]),
        np.concatenate([f.test.weak for f in folds]),
        np.concatenate([f.test.strong for f in folds]),
    )
    costs: list[np.ndarray] = []
    for model in (ROUTELLM_STRONG_MODEL, ROUTELLM_WEAK_MODEL):
        price = table.lookup(model)
        per_token = (price.input_cost_per_token, price.output_cost_per_token) if price else None
        cost = request_costs(rows.prompts, model, per_token, output_tokens)
        if cost is None:
            raise SystemExit(f"{model!r} is not in litellm's price table ({table.version})")
        costs.append(cost)
    return Pooled(rows, np.concatenate([f.scores for f in folds]), costs[0], costs[1])


# -- the alternatives (--compare) --------------------------------------------------------------------------------

# (train vectors, train lexical, train rows, test vectors, test lexical, test rows) -> test scores
Arr = np.ndarray
Scorer = Callable[[Arr, Arr, Rows, Arr, Arr, Rows], Arr]


def _need(rows: Rows) -> np.ndarray:
    return (rows.strong > rows.weak).astype(np.float64)


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = train.mean(0), np.where(train.std(0) > 1e-9, train.std(0), 1.0)
    return (train - mean) / std, (test - mean) / std


def _logistic_p(x_tr: np.ndarray, y: np.ndarray, x_te: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """``penalty`` per row, as in the routing heads (the fitter's l2 is on the summed loss)."""
    return fit_logistic(x_tr, y, l2=penalty * len(y)).predict(x_te)


def logreg_embedding_need(v_tr: Arr, l_tr: Arr, tr: Rows, v_te: Arr, l_te: Arr, te: Rows) -> Arr:
    """P(strong needed) from the embedding alone (L2 1e-3 per row: the best of 4e-5..0.13 tried on these folds)."""
    return _logistic_p(v_tr, _need(tr), v_te, np.full(v_tr.shape[1], 1e-3))


def logreg_embedding_lexical_need(v_tr: Arr, l_tr: Arr, tr: Rows, v_te: Arr, l_te: Arr, te: Rows) -> Arr:
    """P(strong needed) from embedding + lexical, the shipped penalties."""
    s_tr, s_te = _standardise(l_tr, l_te)
    pen = np.concatenate([np.full(v_tr.shape[1], EMBEDDING_PENALTY), np.full(l_tr.shape[1], LEXICAL_PENALTY)])
    return _logistic_p(np.hstack([v_tr, s_tr]), _need(tr), np.hstack([v_te, s_te]), pen)


def two_head_lexical(v_tr: Arr, l_tr: Arr, tr: Rows, v_te: Arr, l_te: Arr, te: Rows) -> Arr:
    """The shipped default classifier (fit_heads, lexical block only) without the threshold selection."""
    return score_with(fit_heads(None, l_tr, tr.strong, tr.weak), None, l_te)


def two_head_embedding_lexical(v_tr: Arr, l_tr: Arr, tr: Rows, v_te: Arr, l_te: Arr, te: Rows) -> Arr:
    """The embedding+lexical classifier (fit_heads) without the threshold selection."""
    return score_with(fit_heads(v_tr, l_tr, tr.strong, tr.weak), v_te, l_te)


def knn_gain(v_tr: Arr, l_tr: Arr, tr: Rows, v_te: Arr, l_te: Arr, te: Rows, k: int = 50) -> Arr:
    """Mean (strong - weak) of the k most similar training prompts (cosine): needs every training vector."""
    sims = v_te @ v_tr.T
    idx = np.argpartition(-sims, k, axis=1)[:, :k]
    return (tr.strong - tr.weak)[idx].mean(axis=1)


ALTERNATIVES: dict[str, Scorer] = {
    "logreg(embedding) → P(strong needed)": logreg_embedding_need,
    "logreg(embedding+lexical) → P(strong needed)": logreg_embedding_lexical_need,
    "kNN-50 over embeddings → mean gain": knn_gain,
    "two-head logreg(embedding+lexical) (--features embedding+lexical)": two_head_embedding_lexical,
    "two-head logreg(lexical only) (shipped default)": two_head_lexical,
}


def compare(split_list: list[tuple[str, Rows, Rows]], store: EmbeddingStore) -> list[tuple[str, float, float]]:
    results = []
    for name, scorer in ALTERNATIVES.items():
        parts = []
        for _, train, test in split_list:
            v_tr, v_te = store(train.prompts), store(test.prompts)
            l_tr, l_te = lexical_matrix(train.prompts), lexical_matrix(test.prompts)
            parts.append((scorer(v_tr, l_tr, train, v_te, l_te, test), test))
        scores = np.concatenate([p[0] for p in parts])
        strong = np.concatenate([p[1].strong for p in parts])
        weak = np.concatenate([p[1].weak for p in parts])
        results.append((name, apgr(scores, strong, weak), share_needed(scores, strong, weak, HEADLINE_TARGET)))
    return results


# -- cost of training and deciding (--timing) --------------------------------------------------------------------


def percentiles_us(seconds: list[float]) -> tuple[float, float]:
    return float(np.percentile(seconds, 50) * 1e6), float(np.percentile(seconds, 99) * 1e6)


def timing(args: argparse.Namespace, store: EmbeddingStore) -> dict[str, float | int]:
    """Train on the whole ``--data`` file (timed) and time ``decide`` per prompt, as the gateway calls it."""
    rows = Rows.read(args.data)
    embedded = args.features == EMBEDDING_FEATURES
    began = time.perf_counter()
    policy_dict = train_policy(
        feedback_from_routellm(rows.frame),
        ROUTELLM_STRONG_MODEL,
        ROUTELLM_WEAK_MODEL,
        output_tokens=args.output_tokens,
        cv_folds=args.folds,
        features=args.features,
        embed=store if embedded else None,
        seed=args.seed,
    )
    train_s = time.perf_counter() - began
    policy = RoutingPolicy.from_dict(policy_dict)
    prompts = rows.prompts
    if embedded:  # decide embeds every prompt: a sample keeps this to a minute
        rng = np.random.default_rng(args.seed)
        prompts = [prompts[i] for i in rng.choice(len(prompts), size=min(300, len(prompts)), replace=False)]
    for prompt in prompts[:50]:  # warm-up (first embedder call loads the model)
        policy.decide(prompt)
    seconds, lengths = [], []
    for prompt in prompts:
        t0 = time.perf_counter()
        policy.decide(prompt)
        seconds.append(time.perf_counter() - t0)
        lengths.append(len(prompt))
    about_2kb = [t for t, n in zip(seconds, lengths, strict=True) if 1900 <= n <= 2200]
    p50, p99 = percentiles_us(seconds)
    p50_2kb, p99_2kb = percentiles_us(about_2kb) if about_2kb else (float("nan"), float("nan"))
    table = Table(title=f"Training on the whole file and decide() ({args.features})")
    for col in (
        "train (s)",
        "prompts timed",
        "decide p50",
        "decide p99",
        "~2 KB prompts",
        "p50 (~2 KB)",
        "p99 (~2 KB)",
    ):
        table.add_column(col, justify="right")
    note = " (embeddings cached)" if embedded else ""
    table.add_row(
        f"{train_s:.1f}{note}",
        f"{len(seconds):,}",
        f"{p50:.0f} µs",
        f"{p99:.0f} µs",
        f"{len(about_2kb):,}",
        f"{p50_2kb:.0f} µs",
        f"{p99_2kb:.0f} µs",
    )
    out.print(table)
    return {
        "train_full_file_s": round(train_s, 2),
        "trained_rows": policy_dict["trained_rows"],
        "decide_p50_us": round(p50, 1),
        "decide_p99_us": round(p99, 1),
        "decide_2kb_p50_us": round(p50_2kb, 1),
        "decide_2kb_p99_us": round(p99_2kb, 1),
    }


# -- report ------------------------------------------------------------------------------------------------------


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def print_curve(p: Pooled) -> None:
    table = Table(title="Quality vs share of strong calls (pooled test folds, ranking by router score)")
    for col in ("strong calls", "quality (% of strong)", "PGR", "random routing", "$ / 1k requests"):
        table.add_column(col, justify="right")
    order = np.argsort(-p.scores, kind="stable")
    gap = p.rows.strong.mean() - p.rows.weak.mean()
    for share in np.linspace(0, 1, 11):
        to_strong = np.zeros(len(order), dtype=bool)
        to_strong[order[: round(share * len(order))]] = True
        q, s, c = p.routed(to_strong)
        pgr = (q * p.strong_quality - p.rows.weak.mean()) / gap
        table.add_row(pct(s), pct(q), f"{pgr:.2f}", pct(p.random_quality(s)), f"${c:.3f}")
    out.print(table)


def print_operating_points(p: Pooled, folds: list[Fold]) -> dict[float, tuple[float, float, float]]:
    """Apply each fold's training-chosen thresholds to its test fold; returns target -> (quality, share, cost)."""
    table = Table(title="Operating points chosen on the training data, applied to the test folds")
    for col in (
        "target",
        "train: quality",
        "train: strong",
        "test: quality",
        "test: strong",
        "random @ share",
        "$ / 1k",
    ):
        table.add_column(col, justify="right")
    results = {}
    for target in sorted(folds[0].thresholds):
        to_strong = np.concatenate([f.scores >= f.thresholds[target] for f in folds])
        q, s, c = p.routed(to_strong)
        results[target] = (q, s, c)
        weights = np.array([len(f.test.prompts) for f in folds], dtype=np.float64)
        eq = np.average([f.expected[target][0] for f in folds], weights=weights)
        es = np.average([f.expected[target][1] for f in folds], weights=weights)
        mark = " ←" if abs(target - HEADLINE_TARGET) < 1e-9 else ""
        table.add_row(f"{pct(target)}{mark}", pct(eq), pct(es), pct(q), pct(s), pct(p.random_quality(s)), f"${c:.3f}")
    out.print(table)
    return results


def print_folds(folds: list[Fold]) -> None:
    table = Table(title=f"Per test fold, at the {pct(HEADLINE_TARGET)} operating point chosen on training")
    for col in ("fold", "prompts", "weak acc", "strong acc", "APGR", "quality (% of strong)", "strong calls"):
        table.add_column(col, justify="right")
    for f in folds:
        r = f.test
        to_strong = f.scores >= f.thresholds[HEADLINE_TARGET]
        quality = np.where(to_strong, r.strong, r.weak).mean() / r.strong.mean()
        table.add_row(
            f.name,
            f"{len(r.prompts):,}",
            pct(r.weak.mean()),
            pct(r.strong.mean()),
            f"{apgr(f.scores, r.strong, r.weak):.3f}",
            pct(quality),
            pct(to_strong.mean()),
        )
    out.print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEV_FILE, help="CSV for the cross-validation (default: dev)")
    parser.add_argument("--train", type=Path, help="train on this CSV ... (with --test)")
    parser.add_argument("--test", type=Path, help="... and measure on this one")
    parser.add_argument("--folds", type=int, default=5, help="outer CV folds, and the inner folds of training")
    parser.add_argument("--split", choices=("subject", "rows"), default="subject")
    parser.add_argument("--features", choices=FEATURE_MODES, default=DEFAULT_FEATURES, help="the policy's feature mode")
    parser.add_argument("--compare", action="store_true", help="also score the alternative methods")
    parser.add_argument("--timing", action="store_true", help="also time training on --data and decide()")
    parser.add_argument("--output-tokens", type=int, default=DEFAULT_OUTPUT_TOKENS)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads for the embedding")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / f"apex-routing-{MODEL_ID}.npz")
    parser.add_argument("--no-cache", action="store_true")
    args = parser.parse_args()

    began = time.perf_counter()
    store = EmbeddingStore(args.threads, None if args.no_cache else args.cache)
    split_list = splits(args, store)
    folds = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("training + scoring folds", total=len(split_list))
        for label, train, test in split_list:
            folds.append(run_fold(label, train, test, store, args))
            progress.advance(task)
    pooled = pool(folds, args.output_tokens)
    r = pooled.rows

    out.print(
        f"[bold]Routing quality[/bold] ({args.features}, seed {args.seed}): {len(r.prompts):,} test prompts in "
        f"{len(folds)} split(s) "
        f"({'by subject' if args.split == 'subject' and not args.train else args.split if not args.train else 'file'})"
        f"; strong = {ROUTELLM_STRONG_MODEL}, weak = {ROUTELLM_WEAK_MODEL}; "
        f"cost = litellm prices, prompt tokens + {args.output_tokens} output tokens"
    )
    all_strong = pooled.routed(np.ones(len(r.prompts), dtype=bool))
    all_weak = pooled.routed(np.zeros(len(r.prompts), dtype=bool))
    out.print(
        f"all-strong: accuracy {pct(r.strong.mean())}, ${all_strong[2]:.3f} / 1k requests;  "
        f"all-weak: accuracy {pct(r.weak.mean())} = {pct(all_weak[0])} of strong, ${all_weak[2]:.3f} / 1k"
    )
    print_curve(pooled)
    points = print_operating_points(pooled, folds)
    if len(folds) > 1:
        print_folds(folds)
    router_apgr = apgr(pooled.scores, r.strong, r.weak)
    rand_apgr = random_apgr(r.strong, r.weak)
    oracle_share = share_needed(pooled.scores, r.strong, r.weak, HEADLINE_TARGET)
    out.print(
        f"APGR {router_apgr:.3f} (random {rand_apgr:.3f}); strong share the pooled test curve needs for "
        f"{pct(HEADLINE_TARGET)} (threshold picked on test, for reference only): {pct(oracle_share)}"
    )
    if args.compare:
        table = Table(title="Methods (same folds; APGR and the oracle share for 95 % on the pooled test curve)")
        for col in ("method", "APGR", f"strong share for {pct(HEADLINE_TARGET)}"):
            table.add_column(col, justify="right" if col != "method" else "left")
        for name, a, share in compare(split_list, store):
            table.add_row(name, f"{a:.3f}", pct(share))
        out.print(table)

    elapsed = time.perf_counter() - began
    timed = timing(args, store) if args.timing else {}
    q, s, c = points[HEADLINE_TARGET]
    goal = q >= HEADLINE_TARGET - 1e-9 and s <= 0.5
    out.print(
        f"[bold]{pct(HEADLINE_TARGET)} target (threshold chosen on training)[/bold]: test quality {pct(q)} of "
        f"strong with {pct(s)} strong calls, ${c:.3f} / 1k (all-strong ${all_strong[2]:.3f}, saves "
        f"{pct(1 - c / all_strong[2])}); random routing at that share: {pct(pooled.random_quality(s))}. "
        f"Goal >= 95% quality with <= 50% strong calls: {'PASS' if goal else 'MISS'}  "
        f"[{elapsed:.0f} s]"
    )
    print(
        json.dumps(
            {
                "bench": "routing_quality",
                "features": args.features,
                "seed": args.seed,
                "split": "file" if args.train else args.split,
                "test_prompts": len(r.prompts),
                "quality_pct_of_strong": round(100 * q, 2),
                "strong_share_pct": round(100 * s, 2),
                "apgr": round(router_apgr, 4),
                "cost_per_1k_usd": round(c, 4),
                "all_strong_cost_per_1k_usd": round(all_strong[2], 4),
                "all_weak_quality_pct_of_strong": round(100 * all_weak[0], 2),
                "random_apgr": round(rand_apgr, 4),
                "random_quality_pct_at_share": round(100 * pooled.random_quality(s), 2),
                "goal_met": goal,
                **timed,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
