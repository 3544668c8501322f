"""Semantic cache quality and latency bench (protocol: ``../shared/data/README.md`` beside the
repository, "Semantic cache").

1. Embeds every distinct text of ``--pairs`` (columns ``text_a,text_b,label``) once, inserts every distinct
   ``text_a`` into a fresh :class:`optimizers.semantic_cache.SemanticCache` (LanceDB in a temp dir, one scope) and
   looks up every distinct ``text_b``. A hit is judged by the label of (that text_b, the returned text_a) anywhere
   in the file, either column order: 1 = correct, 0 = false hit, absent = unjudged (counted, left out of
   precision). Precision = correct / (correct + false); recall = correct / distinct text_b with a label-1 partner
   among the entries; hit rate = hits / lookups.
2. Prints a sweep: similarity alone (top-1 cosine >= t), and the shipped verifier at several verify thresholds;
   the shipped default is marked.
3. Optionally (``--paraphrases``, default the GPTCache paraphrase file if present) a cross-check on other text:
   insert every ``origin``, look up every ``similar``: a hit on its own origin is correct, on another one false.
4. Lookup latency at ``--entries`` (100k) entries, including the query embedding and verification, one thread:
   the cache is filled with this file's texts except 2,000 held-out ``text_b`` (the timed queries) and topped up
   with synthetic near-duplicates (a stored vector mixed 80/20 with another, re-normalised, keeping the first
   text), so the verifier sees several close candidates per query.

``--fit`` refits the verifier (``optimizers/verify_weights.json``) instead of only measuring: the queries are split
by connected component of the pair graph (so no text is on both sides), the model is fitted on the training part's
judged candidates, the verify threshold is chosen on the training part, and the held-out part is reported.

The last line printed is one JSON object with the figures at the shipped defaults.

    .venv/bin/python bench/cache_quality.py [--pairs FILE] [--limit N] [--fit] [--threads 1]
"""

from __future__ import annotations

import argparse
import csv
import gc
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _shared_data import SHARED_DATA  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402

from optimizers.embeddings import LocalEmbedder  # noqa: E402
from optimizers.logistic import fit_logistic  # noqa: E402
from optimizers.semantic_cache import (  # noqa: E402
    DEFAULT_CANDIDATES,
    DEFAULT_SIMILARITY_THRESHOLD,
    DEFAULT_VERIFY_THRESHOLD,
    SemanticCache,
)
from optimizers.verify import (  # noqa: E402
    FEATURE_NAMES,
    FEATURE_SIGNS,
    WEIGHTS_PATH,
    Verifier,
    VerifierWeights,
    analyse,
    pair_features,
)

DATA = SHARED_DATA / "cache"
DEFAULT_PAIRS = DATA / "qqp_pairs_dev.csv"
DEFAULT_PARAPHRASES = DATA / "gptcache_paraphrases.csv"
SCOPE = "bench"
SWEEP_FLOOR = 0.70  # lowest similarity in the sweeps; candidates below it are never looked at
SIM_SWEEP = (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.96, 0.97, 0.98)
VERIFY_SWEEP = (0.5, 0.6, 0.7, 0.75, 0.8, 0.825, 0.85, 0.875, 0.9, 0.925)
TRAIN_SHARE = 0.7
TARGET_PRECISION = 0.90  # the default verify threshold: the loosest whose training precision reaches this
console = Console(stderr=True)


@dataclass
class PairData:
    entries: list[str]  # distinct text_a, file order
    queries: list[str]  # distinct text_b, file order
    labels: dict[frozenset[str], int]
    has_partner: np.ndarray  # per query: a label-1 partner among the entries
    train: np.ndarray  # per query: in the training part of the by-question split


def read_pairs(path: Path, limit: int | None) -> PairData:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if limit:
        rows = rows[:limit]
    entries = list(dict.fromkeys(r["text_a"] for r in rows))
    queries = list(dict.fromkeys(r["text_b"] for r in rows))
    labels: dict[frozenset[str], int] = {}
    for r in rows:
        key = frozenset((r["text_a"], r["text_b"]))
        labels[key] = max(labels.get(key, 0), int(r["label"]))
    entry_set = set(entries)
    positives = {r["text_b"] for r in rows if r["label"] == "1" and r["text_a"] in entry_set}
    has_partner = np.array([q in positives for q in queries])
    train = np.array([_component_bucket(c) < TRAIN_SHARE for c in _components(rows, queries)])
    return PairData(entries, queries, labels, has_partner, train)


def _components(rows: list[dict[str, str]], queries: list[str]) -> list[str]:
    """For each query, a stable name of its connected component in the pair graph (its smallest text)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r in rows:
        a, b = find(r["text_a"]), find(r["text_b"])
        if a != b:
            parent[max(a, b)] = min(a, b)  # the root is always the smallest text of the component
    return [find(q) for q in queries]


def _component_bucket(name: str) -> float:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def embed_all(embedder: LocalEmbedder, texts: list[str], what: str) -> np.ndarray:
    out = np.empty((len(texts), embedder.info.dimension), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # length-sorted batches pad little
    step = 256
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"embedding {what}", total=len(texts))
        for start in range(0, len(order), step):
            idx = order[start : start + step]
            out[idx] = embedder.encode([texts[i] for i in idx])
            progress.advance(task, len(idx))
    return out


def cached_embeddings(embedder: LocalEmbedder, texts: list[str], what: str, path: Path | None) -> np.ndarray:
    """``embed_all``, optionally memoised in ``path`` (keyed by a digest of the texts, so a stale file is ignored)."""
    if path is None:
        return embed_all(embedder, texts, what)
    digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]
    file = path.with_name(f"{path.stem}-{digest}.npy")
    if file.is_file():
        return np.load(file)
    vectors = embed_all(embedder, texts, what)
    np.save(file, vectors)
    return vectors


# --- quality -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cand:
    text: str
    similarity: float
    score: float  # verify score


@dataclass
class Row:
    label: str
    similarity: float
    verify: float | None
    precision: float
    recall: float
    hit_rate: float
    correct: int
    false: int
    unjudged: int
    default: bool = False


def collect_candidates(data: PairData, vectors: dict[str, np.ndarray], workdir: Path, k: int) -> list[list[Cand]]:
    """Insert the entries into a real cache, then take the top-``k`` scored candidates of every query."""
    cache = SemanticCache(
        workdir / "quality", similarity_threshold=SWEEP_FLOOR, max_entries=len(data.entries) + 1, candidates=k
    )
    try:
        for text in data.entries:
            cache.insert(SCOPE, text, b"{}", vector=vectors[text])
        found = []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("looking up", total=len(data.queries))
            for text in data.queries:
                matches = cache.candidates_for(SCOPE, text, vector=vectors[text])
                found.append([Cand(m.text, m.similarity, m.verify_score) for m in matches])
                progress.advance(task)
        return found
    finally:
        cache.close()


def rescore(data: PairData, cands: list[list[Cand]], verifier: Verifier) -> list[list[Cand]]:
    return [
        [Cand(c.text, c.similarity, verifier.score(query, c.text, c.similarity)) for c in found]
        for query, found in zip(data.queries, cands, strict=True)
    ]


def judge(data: PairData, query: str, text: str) -> int | None:
    """The label of (query, returned entry) anywhere in the file: 1 correct, 0 false, None unjudged."""
    return data.labels.get(frozenset((query, text)))


def similarity_pick(found: list[Cand], threshold: float) -> Cand | None:
    best = max(found, key=lambda c: c.similarity, default=None)
    return best if best is not None and best.similarity >= threshold else None


def verified_pick(found: list[Cand], floor: float, threshold: float) -> Cand | None:
    """What ``lookup`` serves with this floor and threshold: the best verify score among candidates >= floor."""
    eligible = [c for c in found if c.similarity >= floor]
    best = max(eligible, key=lambda c: (c.score, c.similarity), default=None)
    return best if best is not None and best.score >= threshold else None


def score_row(
    data: PairData, picks: Iterable[Cand | None], mask: np.ndarray, label: str, sim: float, vt: float | None
) -> Row:
    correct = false = unjudged = hits = 0
    for query, pick, use in zip(data.queries, picks, mask, strict=True):
        if not use or pick is None:
            continue
        hits += 1
        verdict = judge(data, query, pick.text)
        if verdict == 1:
            correct += 1
        elif verdict == 0:
            false += 1
        else:
            unjudged += 1
    lookups = max(int(mask.sum()), 1)
    partners = max(int((data.has_partner & mask).sum()), 1)
    return Row(
        label, sim, vt, correct / max(correct + false, 1), correct / partners, hits / lookups, correct, false, unjudged
    )


def sweep(data: PairData, cands: list[list[Cand]], mask: np.ndarray, floor: float, default_vt: float) -> list[Row]:
    rows = [
        score_row(data, (similarity_pick(f, t) for f in cands), mask, "similarity only", t, None) for t in SIM_SWEEP
    ]
    for vt in sorted(set(VERIFY_SWEEP) | {default_vt}):
        row = score_row(data, (verified_pick(f, floor, vt) for f in cands), mask, "verified", floor, vt)
        row.default = vt == default_vt
        rows.append(row)
    return rows


def print_table(title: str, rows: list[Row]) -> None:
    print(f"\n{title}")
    print(
        f"{'mode':<16} {'sim>=':>6} {'verify>=':>8} {'precision':>9} {'recall':>7} {'hit rate':>8} "
        f"{'correct':>7} {'false':>6} {'unjudged':>8}"
    )
    for r in rows:
        vt = "-" if r.verify is None else f"{r.verify:.3f}"
        mark = "  <- shipped default" if r.default else ""
        print(
            f"{r.label:<16} {r.similarity:>6.2f} {vt:>8} {r.precision:>9.3f} {r.recall:>7.3f} {r.hit_rate:>8.3f} "
            f"{r.correct:>7} {r.false:>6} {r.unjudged:>8}{mark}"
        )


# --- fitting -------------------------------------------------------------------------------------------------


def fit_weights(data: PairData, cands: list[list[Cand]], floor: float, source: str) -> VerifierWeights:
    """Logistic fit on the training part's judged candidates; threshold = loosest reaching TARGET_PRECISION there."""
    xs, ys = [], []
    for query, found, is_train in zip(data.queries, cands, data.train, strict=True):
        if not is_train:
            continue
        qa = analyse(query)
        for c in found:
            verdict = judge(data, query, c.text)
            if c.similarity >= floor and verdict is not None:
                xs.append(pair_features(qa, analyse(c.text), c.similarity))
                ys.append(float(verdict))
    x, y = np.array(xs), np.array(ys)
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
    signs = np.array([FEATURE_SIGNS[name] for name in FEATURE_NAMES])
    w, b = fit_logistic((x - mu) / sd, y, l2=1.0, signs=signs)
    weights = tuple(float(v) for v in w / sd)
    bias = b - float((w / sd) @ mu)
    console.print(f"fitted on {len(y)} judged candidate pairs of {int(data.train.sum())} training queries:")
    for name, weight in zip(FEATURE_NAMES, weights, strict=True):
        console.print(f"  {name:<24} {weight:+.3f}")
    console.print(f"  {'bias':<24} {bias:+.3f}")
    rescored = rescore(data, cands, Verifier(VerifierWeights(weights, bias, 0.5, floor)))
    vt = choose_threshold(data, rescored, data.train, floor)
    notes = (
        f"bench/cache_quality.py --fit on {source}: L2-regularised logistic regression (l2=1 on standardised "
        f"features; weights sign-constrained by FEATURE_SIGNS, so a mismatch can only lower the score) over the "
        f"judged top-{DEFAULT_CANDIDATES} candidates with cosine >= {floor} of the "
        f"{int(data.train.sum())} training queries (a {TRAIN_SHARE:.0%} split by connected component of the pair "
        f"graph, sha256 of the component's smallest text, so no text is on both sides); default_verify_threshold "
        f"is the loosest threshold on a 0.005 grid whose precision on the training queries is >= {TARGET_PRECISION}"
    )
    return VerifierWeights(weights, bias, vt, floor, notes)


def choose_threshold(data: PairData, cands: list[list[Cand]], mask: np.ndarray, floor: float) -> float:
    """Walk the verify threshold down until training precision falls below the target; keep the last good one."""
    chosen = 1.0
    for vt in np.arange(0.995, 0.0, -0.005):
        row = score_row(data, (verified_pick(f, floor, vt) for f in cands), mask, "", floor, float(vt))
        if row.precision >= TARGET_PRECISION:
            chosen = round(float(vt), 3)
        elif row.correct >= 100:
            break
    return chosen


# --- GPTCache paraphrases --------------------------------------------------------------------------------------


def paraphrase_check(path: Path, embedder: LocalEmbedder, workdir: Path, limit: int | None) -> dict[str, float]:
    """Insert every origin, look up every paraphrase: share served its own origin (recall) and others (false)."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))[: limit or None]
    texts = list(dict.fromkeys([r["origin"] for r in rows] + [r["similar"] for r in rows]))
    vectors = dict(zip(texts, embed_all(embedder, texts, path.name), strict=True))
    with SemanticCache(workdir / "paraphrases", max_entries=len(rows) + 1) as cache:
        for r in dict.fromkeys(r["origin"] for r in rows):
            cache.insert(SCOPE, r, b"{}", vector=vectors[r])
        own = other = 0
        for r in rows:
            match = cache.lookup(SCOPE, r["similar"], vector=vectors[r["similar"]])
            if match is not None and match.verified:
                own += match.text == r["origin"]
                other += match.text != r["origin"]
    return {"lookups": len(rows), "correct": own, "false": other, "recall": own / max(len(rows), 1)}


# --- latency -------------------------------------------------------------------------------------------------


def latency(data: PairData, vectors: dict[str, np.ndarray], workdir: Path, entries: int, n_queries: int) -> dict:
    """Lookup latency (embedding + search + verification) at ``entries`` entries, timed queries not in the cache."""
    rng = np.random.default_rng(7)
    entry_set = set(data.entries)
    pool = [q for q in data.queries if q not in entry_set]
    held = set(rng.choice(len(pool), size=min(n_queries, len(pool) // 2), replace=False).tolist())
    timed = [pool[i] for i in sorted(held)]
    fill = [t for t in dict.fromkeys(data.entries + data.queries) if t not in set(timed)][:entries]
    fill_vecs = np.stack([vectors[t] for t in fill])
    synthetic = entries - len(fill)
    embedder = LocalEmbedder(threads=1)  # the gateway's setting: one intra-op thread
    cache = SemanticCache(workdir / "latency", embedder=embedder, max_entries=entries)
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"filling to {entries} entries", total=entries)
            insert_ms = []
            for text, vec in zip(fill, fill_vecs, strict=True):
                started = time.perf_counter()
                cache.insert(SCOPE, text, b'{"cached": true}', vector=vec)
                insert_ms.append((time.perf_counter() - started) * 1e3)
                progress.advance(task)
            a = rng.integers(0, len(fill), synthetic)
            b = rng.integers(0, len(fill), synthetic)
            mixed = 0.8 * fill_vecs[a] + 0.2 * fill_vecs[b]
            mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
            for i in range(synthetic):
                cache.insert(SCOPE, fill[a[i]], b'{"cached": true}', vector=mixed[i])
                progress.advance(task)
        cache.flush()  # measure lookups without a background write in flight
        # What the gateway should do once at startup (see the README): move everything allocated so far -- mostly
        # lancedb's ~120k import-time objects -- out of the collector's reach, so no full GC pass lands in a lookup.
        gc.collect()
        gc.freeze()
        for text in timed[:20]:  # warm-up: onnxruntime allocations, caches
            cache.lookup(SCOPE, text)
        embed_ms, search_ms, total_ms, hits, verified = [], [], [], 0, 0
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("timing lookups", total=len(timed))
            for text in timed:
                analyse.cache_clear()  # no help from the analysis cache: every lookup analyses its candidates anew
                started = time.perf_counter()
                vec = cache.embed(text)
                embedded = time.perf_counter()
                match = cache.lookup(SCOPE, text, vector=vec)
                done = time.perf_counter()
                embed_ms.append((embedded - started) * 1e3)
                search_ms.append((done - embedded) * 1e3)
                total_ms.append((done - started) * 1e3)
                hits += match is not None
                verified += bool(match and match.verified)
                progress.advance(task)
        gc.unfreeze()

        def pct(values: list[float], q: float) -> float:
            return float(np.percentile(values, q))

        return {
            "entries": len(cache),
            "file_texts": len(fill),
            "synthetic": synthetic,
            "queries": len(timed),
            "candidates_found": hits,
            "verified": verified,
            "lookup_p50_ms": pct(total_ms, 50),
            "lookup_p99_ms": pct(total_ms, 99),
            "lookup_max_ms": max(total_ms),
            "embed_p50_ms": pct(embed_ms, 50),
            "embed_p99_ms": pct(embed_ms, 99),
            "search_verify_p50_ms": pct(search_ms, 50),
            "search_verify_p99_ms": pct(search_ms, 99),
            "insert_p50_ms": pct(insert_ms, 50),
            "insert_p99_ms": pct(insert_ms, 99),
            "load_average": os.getloadavg()[0],
        }
    finally:
        cache.close()


# --- main ----------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, default=DEFAULT_PAIRS, help="CSV with text_a,text_b,label")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N rows (quick run)")
    parser.add_argument(
        "--paraphrases",
        type=Path,
        default=DEFAULT_PARAPHRASES,
        help="CSV with origin,similar (all true paraphrases); '' to skip",
    )
    parser.add_argument("--fit", action="store_true", help=f"refit the verifier and write {WEIGHTS_PATH.name}")
    parser.add_argument(
        "--embedding-cache",
        type=Path,
        default=None,
        help="optional .npy file to reuse this file's vectors across runs (written if missing)",
    )
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads for the bulk embedding")
    parser.add_argument("--entries", type=int, default=100_000, help="cache size for the latency measurement")
    parser.add_argument("--latency-queries", type=int, default=2000)
    parser.add_argument("--no-latency", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    data = read_pairs(args.pairs, args.limit)
    console.print(
        f"{args.pairs.name}: {len(data.entries)} entries (distinct text_a), {len(data.queries)} lookups "
        f"(distinct text_b), {int(data.has_partner.sum())} with a label-1 partner"
    )
    embedder = LocalEmbedder(threads=args.threads)
    texts = list(dict.fromkeys(data.entries + data.queries))
    vectors = dict(zip(texts, cached_embeddings(embedder, texts, args.pairs.name, args.embedding_cache), strict=True))
    weights = VerifierWeights.load()
    floor, default_vt = DEFAULT_SIMILARITY_THRESHOLD, DEFAULT_VERIFY_THRESHOLD
    with tempfile.TemporaryDirectory(prefix="cache_quality-") as tmp:
        workdir = Path(tmp)
        cands = collect_candidates(data, vectors, workdir, DEFAULT_CANDIDATES)
        if args.fit:
            weights = fit_weights(data, cands, floor, args.pairs.name)
            weights.dump()
            console.print(f"wrote {WEIGHTS_PATH}")
            cands = rescore(data, cands, Verifier(weights))
            default_vt = weights.default_threshold
            for name, mask in (("training part", data.train), ("held-out part", ~data.train)):
                print_table(f"{name} ({int(mask.sum())} lookups)", sweep(data, cands, mask, floor, default_vt))
        everything = np.ones(len(data.queries), dtype=bool)
        rows = sweep(data, cands, everything, floor, default_vt)
        print_table(
            f"{args.pairs.name}: all {len(data.queries)} lookups against {len(data.entries)} entries "
            f"(top-{DEFAULT_CANDIDATES} candidates with cosine >= {floor} go to the verifier)",
            rows,
        )
        shipped = next(r for r in rows if r.default)
        para = None
        if args.paraphrases and str(args.paraphrases) and args.paraphrases.is_file():
            para = paraphrase_check(args.paraphrases, embedder, workdir, args.limit)
            print(
                f"\n{args.paraphrases.name}: {para['lookups']} paraphrase lookups at the shipped defaults: "
                f"{para['correct']} served their own origin (recall {para['recall']:.3f}), "
                f"{para['false']} served another origin"
            )
        lat = None
        if not args.no_latency:
            lat = latency(data, vectors, workdir, args.entries, args.latency_queries)
            print(
                f"\nlookup latency at {lat['entries']} entries ({lat['file_texts']} texts of the file + "
                f"{lat['synthetic']} synthetic near-duplicates), {lat['queries']} queries not in the cache "
                f"({lat['candidates_found']} had a candidate >= the floor, {lat['verified']} verified), one thread, "
                f"1-min load average {lat['load_average']:.2f}:\n"
                f"  embedding + search + verification  p50 {lat['lookup_p50_ms']:6.2f} ms   "
                f"p99 {lat['lookup_p99_ms']:6.2f} ms   max {lat['lookup_max_ms']:6.2f} ms\n"
                f"  of which embedding                 p50 {lat['embed_p50_ms']:6.2f} ms   "
                f"p99 {lat['embed_p99_ms']:6.2f} ms\n"
                f"  of which search + verification     p50 {lat['search_verify_p50_ms']:6.2f} ms   "
                f"p99 {lat['search_verify_p99_ms']:6.2f} ms\n"
                f"  insert (vector given, in memory)   p50 {lat['insert_p50_ms']:6.3f} ms   "
                f"p99 {lat['insert_p99_ms']:6.3f} ms"
            )
    console.print(f"done in {time.perf_counter() - started:.0f} s")
    result = {
        "bench": "cache_quality",
        "precision": round(shipped.precision, 4),
        "recall": round(shipped.recall, 4),
        "hit_rate": round(shipped.hit_rate, 4),
        "threshold": floor,
        "verify_threshold": default_vt,
        "unjudged": shipped.unjudged,
        "lookup_p50_ms": round(lat["lookup_p50_ms"], 3) if lat else None,
        "lookup_p99_ms": round(lat["lookup_p99_ms"], 3) if lat else None,
        "entries": lat["entries"] if lat else None,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
