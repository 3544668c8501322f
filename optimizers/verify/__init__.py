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

Modules, in the order a pair is scored: ``stemmer`` (Porter), ``text`` (one text -> :class:`Analysis`),
``pair_features`` (two analyses + cosine -> :data:`FEATURE_NAMES` vector), ``model`` (:class:`VerifierWeights`,
:class:`Verifier`). The weights live in ``optimizers/verify_weights.json``, written by ``bench/cache_quality.py
--fit`` (a split of the development pairs that keeps every question on one side; the notes field says how) with
the shared fitter :func:`optimizers.logistic.fit_logistic`. Everything here is pure Python + numpy: ~50 us to
analyse a text, a few us to score a pair.
"""

from optimizers.logistic import fit_logistic
from optimizers.verify.model import FEATURE_SIGNS, WEIGHTS_PATH, Verifier, VerifierWeights
from optimizers.verify.pair_features import ANTONYMS, FEATURE_NAMES, pair_features
from optimizers.verify.stemmer import stem
from optimizers.verify.text import (
    DIRECTIONAL,
    NEGATIONS,
    NUMBER_WORDS,
    PERSONS,
    STOP_WORDS,
    WH_WORDS,
    Analysis,
    analyse,
)

__all__ = [
    "ANTONYMS",
    "DIRECTIONAL",
    "FEATURE_NAMES",
    "FEATURE_SIGNS",
    "NEGATIONS",
    "NUMBER_WORDS",
    "PERSONS",
    "STOP_WORDS",
    "WEIGHTS_PATH",
    "WH_WORDS",
    "Analysis",
    "Verifier",
    "VerifierWeights",
    "analyse",
    "fit_logistic",  # the shared fitter, re-exported: the verifier's refit (bench/cache_quality.py --fit) uses it
    "pair_features",
    "stem",
]
