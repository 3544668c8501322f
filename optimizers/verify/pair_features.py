"""Pair features: the evidence, beyond the embedding cosine, that two analysed texts ask different questions.

:data:`FEATURE_NAMES` orders the vector :func:`pair_features` returns and the weights file names; the verifier's
logistic model (:mod:`optimizers.verify.model`) scores it.
"""

from __future__ import annotations

import math

import numpy as np

from optimizers.verify.stemmer import stem
from optimizers.verify.text import Analysis

__all__ = ["ANTONYMS", "FEATURE_NAMES", "pair_features"]


def _order_swaps(a: Analysis, b: Analysis) -> float:
    """Share of discordant pairs among the shared content words' orders (0 = same order, 1 = reversed)."""
    shared = a.content & b.content
    if len(shared) < 2:
        return 0.0
    pos_b = {w: i for i, w in enumerate(x for x in b.sequence if x in shared)}
    order = [pos_b[w] for w in a.sequence if w in shared]
    pairs = len(order) * (len(order) - 1) / 2
    discordant = sum(1 for i in range(len(order)) for j in range(i + 1, len(order)) if order[i] > order[j])
    return discordant / pairs


_NEGATING_PREFIXES = ("un", "in", "im", "il", "ir", "dis", "non", "anti", "de", "mis")
# Pairs of opposites (as Porter stems) that word vectors put close together: a one-word swap that flips the question.
ANTONYMS = frozenset(
    frozenset((stem(a), stem(b)))
    for a, b in (
        ("good", "bad"),
        ("best", "worst"),
        ("better", "worse"),
        ("pro", "con"),
        ("pros", "cons"),
        ("positive", "negative"),
        ("more", "less"),
        ("most", "least"),
        ("increase", "decrease"),
        ("before", "after"),
        ("male", "female"),
        ("men", "women"),
        ("man", "woman"),
        ("boy", "girl"),
        ("buy", "sell"),
        ("rich", "poor"),
        ("cheap", "expensive"),
        ("high", "low"),
        ("big", "small"),
        ("large", "small"),
        ("old", "new"),
        ("old", "young"),
        ("true", "false"),
        ("love", "hate"),
        ("win", "lose"),
        ("start", "stop"),
        ("first", "last"),
        ("early", "late"),
        ("easy", "hard"),
        ("easy", "difficult"),
        ("fast", "slow"),
        ("hot", "cold"),
        ("happy", "sad"),
        ("strong", "weak"),
        ("success", "failure"),
        ("right", "wrong"),
        ("right", "left"),
        ("import", "export"),
        ("input", "output"),
        ("upload", "download"),
        ("min", "max"),
        ("minimum", "maximum"),
        ("north", "south"),
        ("east", "west"),
        ("him", "her"),
    )
)


def _opposed(a: str, b: str) -> bool:
    """True if surface words ``a`` and ``b`` are opposites: a listed pair or a negating prefix (legal/illegal)."""
    if frozenset((stem(a), stem(b))) in ANTONYMS:
        return True
    long, short = (a, b) if len(a) > len(b) else (b, a)
    return len(short) >= 3 and any(long == p + short or long == p + "-" + short for p in _NEGATING_PREFIXES)


def _contradiction(only_a: frozenset[str], a: Analysis, only_b: frozenset[str], b: Analysis) -> bool:
    if not only_a or not only_b:
        return False
    words_a = dict(a.surface)
    words_b = dict(b.surface)
    return any(_opposed(words_a[x], words_b[y]) for x in only_a for y in only_b)


FEATURE_NAMES = (
    "cosine",
    "cosine_over_0.90",  # hinges: lets the linear model bend where the similarity curve saturates
    "cosine_over_0.95",
    "only_min",  # log1p(content words in one text but not the other), the smaller side
    "only_max",  # ... the larger side
    "unmatched_share",  # unmatched content words / all distinct content words
    "shared",  # log1p(shared content words)
    "number_mismatch",
    "name_mismatch",
    "negation_mismatch",
    "wh_mismatch",
    "question_count_mismatch",
    "length_ratio",  # log(max/min word count)
    "order_swaps",  # "convert A to B" vs "convert B to A"
    "person_mismatch",  # "my" vs "your", "him" vs "her"
    "contradiction",  # an unmatched word is the opposite of one in the other text (good/bad, legal/illegal)
    "function_word_diff",  # log1p(stop words in one text only)
    "direction_swap",  # "A to B" in one text, "B to A" in the other
    # The same mismatches times max(0, cosine - 0.9): at a high cosine a mismatch is the *only* difference, and it
    # matters far more (QQP: a number mismatch at cosine >= 0.95 drops the duplicate rate from 0.89 to 0.56),
    # which one additive weight per flag cannot express.
    "number_mismatch_high",
    "name_mismatch_high",
    "negation_mismatch_high",
    "contradiction_high",
)


def pair_features(a: Analysis, b: Analysis, cosine: float) -> np.ndarray:
    """The feature vector for one (query, candidate) pair; symmetric in ``a`` and ``b``."""
    only_a = a.content - b.content
    only_b = b.content - a.content
    shared = len(a.content & b.content)
    union = len(a.content | b.content)
    n_a, n_b = len(only_a), len(only_b)
    names_a = a.names - b.all_stems
    names_b = b.names - a.all_stems
    high = max(0.0, cosine - 0.90)
    number = float(a.numbers != b.numbers)
    name = float(bool(names_a or names_b))
    negation = float(a.negated != b.negated)
    contradiction = float(_contradiction(only_a, a, only_b, b))
    return np.array(
        (
            cosine,
            high,
            max(0.0, cosine - 0.95),
            math.log1p(min(n_a, n_b)),
            math.log1p(max(n_a, n_b)),
            (n_a + n_b) / union if union else 0.0,
            math.log1p(shared),
            number,
            name,
            negation,
            float(a.wh != b.wh),
            float(a.questions != b.questions),
            math.log(max(a.n_words, b.n_words, 1) / max(min(a.n_words, b.n_words), 1)),
            _order_swaps(a, b),
            float(a.persons != b.persons),
            contradiction,
            math.log1p(len((a.all_stems - a.content) ^ (b.all_stems - b.content))),
            float(any((y, x) in b.directed for x, y in a.directed)),
            number * high,
            name * high,
            negation * high,
            contradiction * high,
        ),
        dtype=np.float64,
    )
