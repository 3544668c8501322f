"""Verification stage of the semantic cache: is a cached prompt really the same question as the new one?

Sentence-embedding cosine alone serves near-misses whose one differing word decides the answer: "Is it legal to
sell used tickets?" / "... illegal ...", "convert dollars to rupees" / "rupees to dollars", "the GRE in 2 months" /
"in 6 months" all sit at cosine 0.93-0.99. So a vector-search candidate is scored by a tiny logistic model over
the cosine plus structural evidence from the words (lower-cased, Porter-stemmed, stop words removed):

- opposites: an unmatched word is the antonym / negated form of one in the other text (good/bad, legal/illegal);
- swapped direction around "to / from / than / into ..." ("A to B" vs "B to A") and swapped word order;
- mismatched numbers (digits and number words, "1GB" vs "2GB", "1970s" vs "1990s"), capitalised names, negation;
- features that, on the development data, carry no signal once the cosine is known: counts and shares of content
  words in one text only, question words, person ("my"/"your"), function-word changes, question count, length
  ratio. They stay computed so a refit on other data can use them, but the fit is sign-constrained
  (:data:`FEATURE_SIGNS`): evidence of a difference may only lower the score. Unconstrained, the QQP development
  pairs teach the opposite for the word counts (their negatives were selected for high word overlap, so at a given
  cosine *more* differing words means *more* likely a duplicate), which then scores long, loosely related texts
  higher the more they differ. With the constraint those weights come out 0. (Also tried and dropped, no gain:
  IDF weighting of the unmatched words and the cosine between their word vectors, which costs a second embedding
  call per lookup.)

The weights live in ``verify_weights.json`` next to this module, written by ``bench/cache_quality.py --fit`` (a
split of the development pairs that keeps every question on one side; the notes field says how). Everything here
is pure Python + numpy: ~50 us to analyse a text, a few us to score a pair.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

WEIGHTS_PATH = Path(__file__).with_name("verify_weights.json")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Function words that carry no topic. Negations and question words are deliberately absent: they are compared by
# their own features, because "not" or "why" vs "how" changes the question.
STOP_WORDS = _words(
    """
    a about above after again against all am an and any are as at be because been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her here hers
    herself him himself his i if in into is it its itself just let me more most my myself of off on once only or
    other our ours ourselves out over own same she should so some such than that the their theirs them themselves
    then there these they this those through to too under until up very was we were while will with would you your
    yours yourself yourselves s t d ll m o re ve y also ever really one someone something anyone anything get got
    getting thing things way ways may might must shall us etc e g ie via per
    """
)
# Prepositions whose two sides cannot be swapped without changing the question ("convert A to B").
DIRECTIONAL = _words("to from into than over against towards toward")
WH_WORDS = _words("what why how when where who whom whose which")
NEGATIONS = _words("not no never none nobody nothing neither nor without cannot cant dont doesnt didnt isnt")
NUMBER_WORDS = {
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "twenty": "20",
    "hundred": "100",
    "thousand": "1000",
    "first": "1",
    "second": "2",
    "third": "3",
}

_TOKEN_RE = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
_NUMBER_RE = re.compile(r"^\d+(?:st|nd|rd|th|s|k|m)?$")
_DIGITS_RE = re.compile(r"\d+")


# --- Porter stemmer (M. F. Porter, 1980). Small and dependency-free; only its consistency matters here. ---------


def _cons(word: str, i: int) -> bool:
    ch = word[i]
    if ch in "aeiou":
        return False
    if ch == "y":
        return i == 0 or not _cons(word, i - 1)
    return True


def _measure(stem: str) -> int:
    """Porter's m: the number of vowel-consonant sequences in ``stem``."""
    m, i, n = 0, 0, len(stem)
    while i < n and _cons(stem, i):
        i += 1
    while i < n:
        while i < n and not _cons(stem, i):
            i += 1
        if i >= n:
            break
        m += 1
        while i < n and _cons(stem, i):
            i += 1
    return m


def _has_vowel(stem: str) -> bool:
    return any(not _cons(stem, i) for i in range(len(stem)))


def _double_cons(word: str) -> bool:
    return len(word) >= 2 and word[-1] == word[-2] and _cons(word, len(word) - 1)


def _cvc(word: str) -> bool:
    if len(word) < 3:
        return False
    return _cons(word, len(word) - 3) and not _cons(word, len(word) - 2) and _cons(word, -1) and word[-1] not in "wxy"


_STEP2 = (
    ("ational", "ate"),
    ("tional", "tion"),
    ("enci", "ence"),
    ("anci", "ance"),
    ("izer", "ize"),
    ("abli", "able"),
    ("alli", "al"),
    ("entli", "ent"),
    ("eli", "e"),
    ("ousli", "ous"),
    ("ization", "ize"),
    ("ation", "ate"),
    ("ator", "ate"),
    ("alism", "al"),
    ("iveness", "ive"),
    ("fulness", "ful"),
    ("ousness", "ous"),
    ("aliti", "al"),
    ("iviti", "ive"),
    ("biliti", "ble"),
)
_STEP3 = (("icate", "ic"), ("ative", ""), ("alize", "al"), ("iciti", "ic"), ("ical", "ic"), ("ful", ""), ("ness", ""))
# Longest suffix first (Porter picks the longest match, then checks its condition); a sorted tuple, not a set,
# so the result does not depend on string hashing.
_STEP4 = tuple(
    sorted(
        _words("al ance ence er ic able ible ant ement ment ent ion ou ism ate iti ous ive ize"),
        key=lambda x: (-len(x), x),
    )
)


def _replace(word: str, rules: tuple[tuple[str, str], ...], min_m: int) -> str:
    for suffix, repl in rules:
        if word.endswith(suffix):
            stem = word[: -len(suffix)]
            return stem + repl if _measure(stem) > min_m else word
    return word


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Porter stem of a lower-case word (cached: vocabularies repeat)."""
    if len(word) <= 2:
        return word
    w = word
    # Step 1a
    if w.endswith(("sses", "ies")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    # Step 1b
    flag = False
    if w.endswith("eed"):
        if _measure(w[:-3]) > 0:
            w = w[:-1]
    elif w.endswith("ed") and _has_vowel(w[:-2]):
        w, flag = w[:-2], True
    elif w.endswith("ing") and _has_vowel(w[:-3]):
        w, flag = w[:-3], True
    if flag:
        if w.endswith(("at", "bl", "iz")):
            w += "e"
        elif _double_cons(w) and w[-1] not in "lsz":
            w = w[:-1]
        elif _measure(w) == 1 and _cvc(w):
            w += "e"
    # Step 1c
    if w.endswith("y") and _has_vowel(w[:-1]):
        w = w[:-1] + "i"
    w = _replace(w, _STEP2, 0)
    w = _replace(w, _STEP3, 0)
    # Step 4
    for suffix in _STEP4:
        if w.endswith(suffix):
            stem_ = w[: -len(suffix)]
            if _measure(stem_) > 1 and (suffix != "ion" or stem_.endswith(("s", "t"))):
                w = stem_
            break
    # Step 5
    if w.endswith("e"):
        stem_ = w[:-1]
        m = _measure(stem_)
        if m > 1 or (m == 1 and not _cvc(stem_)):
            w = stem_
    if w.endswith("ll") and _measure(w) > 1:
        w = w[:-1]
    return w


# --- Text analysis ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the verifier needs from one text; computed once per text (stored entries keep theirs)."""

    content: frozenset[str]  # stems of content words
    all_stems: frozenset[str]  # stems of every word, stop words included
    numbers: frozenset[str]
    names: frozenset[str]  # stems of capitalised words not at a sentence start
    negated: bool
    wh: frozenset[str]
    questions: int  # number of "?"-terminated questions (at least 1)
    n_words: int
    sequence: tuple[str, ...]  # content stems in text order (for word-order swaps: "A to B" vs "B to A")
    surface: tuple[tuple[str, str], ...]  # (stem, first surface form) of each content stem, for word vectors
    persons: frozenset[str]  # grammatical persons referred to ("1", "2", "3m", "3f", "1p", "3p")
    directed: frozenset[tuple[str, str]]  # (content stem before, after) a directional word: "dollars to rupees"


def _norm_token(token: str) -> str:
    token = token.lower()
    if token.endswith("n't"):
        return "not"
    return token.split("'", 1)[0]


PERSONS = {
    **dict.fromkeys(("i", "me", "my", "mine", "myself"), "1"),
    **dict.fromkeys(("you", "your", "yours", "yourself"), "2"),
    **dict.fromkeys(("he", "him", "his", "himself"), "3m"),
    **dict.fromkeys(("she", "her", "hers", "herself"), "3f"),
    **dict.fromkeys(("we", "us", "our", "ours", "ourselves"), "1p"),
    **dict.fromkeys(("they", "them", "their", "theirs", "themselves"), "3p"),
}


# Small on purpose: each Analysis holds ~8 sets the garbage collector must traverse; a 65k cache made a full
# collection take 300 ms. Analysing a text costs ~50 us, so the cache only saves repeats of hot prompts.
@lru_cache(maxsize=1024)
def analyse(text: str) -> Analysis:
    """Tokenise ``text`` into the sets the pair features compare."""
    matches = list(_TOKEN_RE.finditer(text))
    content: set[str] = set()
    all_stems: set[str] = set()
    numbers: set[str] = set()
    names: set[str] = set()
    wh: set[str] = set()
    persons: set[str] = set()
    sequence: list[str] = []
    surface: dict[str, str] = {}
    directed: set[tuple[str, str]] = set()
    last_content: str | None = None
    pending_left: str | None = None
    negations = 0
    previous_end = 0
    for idx, match in enumerate(matches):
        orig = match.group()
        # A capitalised word right after a sentence boundary is not evidence of a name.
        sentence_start = idx == 0 or any(ch in ".?!:" for ch in text[previous_end : match.start()])
        previous_end = match.end()
        tok = _norm_token(orig)
        if not tok:
            continue
        if tok in NEGATIONS:
            negations += 1
            continue
        if tok in WH_WORDS:
            wh.add(tok)
            continue
        if tok in PERSONS:
            persons.add(PERSONS[tok])
        if tok in NUMBER_WORDS:
            numbers.add(NUMBER_WORDS[tok])
            all_stems.add(tok)
            continue
        if any(ch.isdigit() for ch in tok):
            numbers.update(_DIGITS_RE.findall(tok))
            if _NUMBER_RE.match(tok):  # "2", "1990s", "3rd": the number is the whole word
                all_stems.add(tok)
                continue
        if tok in DIRECTIONAL:
            all_stems.add(tok)
            pending_left = last_content
            continue
        st = stem(tok)
        all_stems.add(st)
        if tok in STOP_WORDS:
            continue
        if pending_left is not None and pending_left != st:
            directed.add((pending_left, st))
        pending_left, last_content = None, st
        if st not in content:
            sequence.append(st)
            surface[st] = tok
        content.add(st)
        if orig[0].isupper() and not sentence_start and tok != "i":
            names.add(st)
    return Analysis(
        content=frozenset(content),
        all_stems=frozenset(all_stems),
        numbers=frozenset(numbers),
        names=frozenset(names),
        negated=negations % 2 == 1,
        wh=frozenset(wh),
        questions=max(1, len(re.findall(r"\?+", text))),
        n_words=len(matches),
        sequence=tuple(sequence),
        surface=tuple(surface.items()),
        persons=frozenset(persons),
        directed=frozenset(directed),
    )


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


def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float = 1.0, signs: np.ndarray | None = None, iterations: int = 50
) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method (IRLS), optionally with sign constraints.

    ``signs[j]`` = +1 / -1 requires weight j to be >= 0 / <= 0 (0: free). Constraints are handled with a small
    active-set loop: a weight that comes out with the wrong sign is pinned at 0 and the rest refitted; a pinned
    weight is released again when the gradient says moving it the allowed way would lower the loss.
    Returns (weights, bias); the bias is free and unregularised.
    """
    d = x.shape[1]
    signs = np.zeros(d) if signs is None else np.asarray(signs, dtype=np.float64)
    free = np.ones(d, dtype=bool)
    weights, bias = np.zeros(d), 0.0
    for _ in range(4 * d + 4):
        w_free, bias = _newton(x[:, free], y, l2, iterations)
        weights = np.zeros(d)
        weights[free] = w_free
        wrong = np.flatnonzero(free & (weights * signs < -1e-12))
        if wrong.size:
            free[wrong[np.argmin(weights[wrong] * signs[wrong])]] = False
            continue
        p = 1.0 / (1.0 + np.exp(-(x @ weights + bias)))
        descent = -(x.T @ (p - y)) * signs  # > 0: the loss falls if the weight moves the allowed way
        release = np.flatnonzero(~free & (descent > 1e-6 * len(y)))
        if not release.size:
            break
        free[release[np.argmax(descent[release])]] = True
    return weights, bias


def _newton(x: np.ndarray, y: np.ndarray, l2: float, iterations: int) -> tuple[np.ndarray, float]:
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(xb @ beta)))
        grad = xb.T @ (p - y) + reg * beta
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(reg) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta[:-1], float(beta[-1])
