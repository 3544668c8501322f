"""Prompt features for the router: a few lexical signals of difficulty (plus, optionally, the sentence embedding).

Length, numbers, operators and question form carry some of *how hard* a prompt is (long multi-step word problems,
symbolic logic, "EXCEPT"/"NOT" questions); they form a small block of standardised scalars — all the default
(``lexical``) policy reads. The embedding says *what* a prompt is about; the ``embedding+lexical`` mode appends it,
which helps on subjects seen in training but not on unseen ones. Every feature is computed from the prompt text
alone, so the same code runs at training time and in the gateway, and the names are written into the policy file:
a policy trained with a different feature list is refused instead of silently mis-scoring. The block is computed
on the request path, so it is kept to ~0.05 ms for a typical prompt and ~0.2 ms for 2 KB.
"""

from __future__ import annotations

import functools
import math
import re
import string
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["LEXICAL_FEATURES", "lexical_features", "lexical_matrix"]


def _word_start(literal: str) -> str:
    """``\\b<literal>`` for a literal starting with a word character, written literal-first.

    A pattern that starts with ``\\b`` makes ``re`` try every position (~12 ns a character); one that starts with a
    literal (or a set of first characters) lets it skip to candidates. The boundary becomes a lookbehind after the
    literal: "no word character right before it", which is what ``\\b`` means there.
    """
    escaped = re.escape(literal)
    return f"{escaped}(?<!\\w{escaped})"


_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_MATH_SYMBOL = re.compile(r"[=+\-*/^<>%$√π∑∫≤≥≠±×÷⊃∨∧¬≡→↔∀∃]|\\frac|\\sqrt")
_CHOICE_LINE = re.compile(r"^\s*\(?[A-Da-d][.)]\s", re.MULTILINE)
# = \b(?:NOT|EXCEPT|LEAST)\b
_NEGATED_QUESTION = re.compile("(?:" + "|".join(_word_start(w) for w in ("NOT", "EXCEPT", "LEAST")) + r")\b")
_COMPUTE = (
    "how many",
    "how much",
    "calculate",
    "compute",
    "solve",
    "what is the value",
    "total",
    "percent",
    "probability",
    "average",
)
_REASONING = (
    "valid",
    "invalid",
    "argument",
    "premise",
    "conclusion",
    "scenario",
    "morally",
    "logically",
    "implies",
    "therefore",
)
_COMPUTE_WORDS = re.compile(r"\b(?:" + "|".join(_COMPUTE) + r")\b", re.IGNORECASE)
_REASONING_WORDS = re.compile(r"\b(?:" + "|".join(_REASONING) + r")\b", re.IGNORECASE)
# = ;\s*$|\bdef |\breturn\b|\bfunction\b|==|\bprint\(|#include  (same alternatives, same order)
_CODE_HINT = re.compile(
    rf";\s*$|{_word_start('def ')}|{_word_start('return')}\b|{_word_start('function')}\b|==|{_word_start('print(')}"
    "|#include",
    re.MULTILINE,
)
# Non-ASCII characters that re.IGNORECASE matches to ASCII letters (İ and ı to i, ſ to s, the Kelvin sign to k):
# where one occurs, "the lower-cased text contains the word" is no safe pre-check, so the regex always runs.
_CASE_FOLD_ODDITIES = "\u0130\u0131\u017f\u212a"
# More lettered lines than this are not one question's options; the overlap is quadratic in their number.
_MAX_OPTIONS = 8
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
_OPTION = re.compile(r"^\s*\(?[A-Ha-h][.)]\s*(.*)$", re.MULTILINE)
_NUMERIC_OPTION = re.compile(r"^[^A-Za-z]*\d[^A-Za-z]*$")
_WORD_SPLIT = re.compile(r"[\s,;.]+")


@functools.lru_cache(maxsize=4)  # three features read the options of the same text in a row
def _options(text: str) -> tuple[str, ...]:
    """The answer options of a multiple-choice prompt ("A. ...", "(b) ..."), or () if there are fewer than two.

    At most the last ``_MAX_OPTIONS`` (a few-shot prompt asks its own question last).
    """
    found = tuple(o.strip() for o in _OPTION.findall(text))
    return found[-_MAX_OPTIONS:] if len(found) >= 2 else ()


def _option_overlap(text: str) -> float:
    """Mean pairwise word overlap (Jaccard) of the options.

    Options that differ by a word or two ("Wrong, Not wrong" / "Not wrong, Wrong", "Invalid. Counterexample when
    G is true" / "... when H is true") need careful reasoning to tell apart; distinct factual options do not.
    """
    sets = [{w for w in _WORD_SPLIT.split(o.lower()) if w} for o in _options(text)]
    if not sets:
        return 0.0
    pairs = [(a, b) for i, a in enumerate(sets) for b in sets[i + 1 :]]
    return sum(len(a & b) / max(len(a | b), 1) for a, b in pairs) / len(pairs)


def _log_option_length(text: str) -> float:
    opts = _options(text)
    return math.log1p(sum(len(o) for o in opts) / len(opts)) if opts else 0.0


def _numeric_option_share(text: str) -> float:
    """Share of options that are numbers or formulas: the question asks for a computed result."""
    opts = _options(text)
    return sum(bool(_NUMERIC_OPTION.match(_LATEX_COMMAND.sub("", o))) for o in opts) / len(opts) if opts else 0.0


def _share(predicate: Callable[[str], bool], ascii_matches: bytes) -> Callable[[str], float]:
    """Share of the characters for which ``predicate`` holds; for ASCII text (most prompts), by deleting
    ``ascii_matches`` (the ASCII characters it holds for) from the bytes, ~2.5x faster than testing each one."""

    def share(text: str) -> float:
        if text.isascii():
            raw = text.encode()
            return (len(raw) - len(raw.translate(None, ascii_matches))) / max(len(text), 1)
        return sum(map(predicate, text)) / max(len(text), 1)

    return share


def _log_count(pattern: re.Pattern[str]) -> Callable[[str], float]:
    return lambda text: math.log1p(len(pattern.findall(text)))


def _log_count_words(pattern: re.Pattern[str], words: tuple[str, ...]) -> Callable[[str], float]:
    """``_log_count`` for a case-insensitive word list, skipping the regex when no word can occur.

    Case-insensitive patterns get no fast scan in ``re`` (~30 us per 2 KB); most prompts contain none of the words,
    which a substring test on the lower-cased text shows in ~3 us.
    """

    def count(text: str) -> float:
        lower = text.lower()
        if not any(w in lower for w in words) and not any(c in text for c in _CASE_FOLD_ODDITIES):
            return 0.0
        return math.log1p(len(pattern.findall(text)))

    return count


# Name -> function of the prompt text. Order matters: it is the column order of the matrix and of the weights.
_FEATURES: dict[str, Callable[[str], float]] = {
    "log_chars": lambda t: math.log1p(len(t)),
    "log_words": lambda t: math.log1p(len(t.split())),
    "log_lines": lambda t: math.log1p(t.count("\n")),
    "mean_word_len": lambda t: min(len(t) / max(len(t.split()), 1), 20.0),
    "digit_share": _share(str.isdigit, string.digits.encode()),
    "log_numbers": _log_count(_NUMBER),
    "log_math_symbols": _log_count(_MATH_SYMBOL),
    "log_question_marks": lambda t: math.log1p(t.count("?")),
    "has_choices": lambda t: float(len(_CHOICE_LINE.findall(t)) >= 2),
    "option_overlap": _option_overlap,
    "log_option_length": _log_option_length,
    "numeric_option_share": _numeric_option_share,
    "negated_question": lambda t: float(bool(_NEGATED_QUESTION.search(t))),
    "log_compute_words": _log_count_words(_COMPUTE_WORDS, _COMPUTE),
    "log_reasoning_words": _log_count_words(_REASONING_WORDS, _REASONING),
    "log_code_hints": _log_count(_CODE_HINT),
    "upper_share": _share(str.isupper, string.ascii_uppercase.encode()),
}

LEXICAL_FEATURES: tuple[str, ...] = tuple(_FEATURES)


def lexical_features(text: str) -> np.ndarray:
    """The lexical block for one prompt, unscaled, in ``LEXICAL_FEATURES`` order."""
    return np.array([fn(text) for fn in _FEATURES.values()], dtype=np.float64)


def lexical_matrix(texts: Sequence[str]) -> np.ndarray:
    """``float64[n, len(LEXICAL_FEATURES)]`` for many prompts (unscaled; the policy stores the scaling)."""
    if not texts:
        return np.zeros((0, len(LEXICAL_FEATURES)), dtype=np.float64)
    return np.vstack([lexical_features(t) for t in texts])
