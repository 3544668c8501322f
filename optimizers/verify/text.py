"""Text analysis for the verifier: one text -> the word sets the pair features compare (:class:`Analysis`).

Words are lower-cased and Porter-stemmed; stop words are kept apart from content words, and negations, question
words, numbers, grammatical persons and capitalised names are collected on their own, because each is compared by
its own feature.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from optimizers.verify.stemmer import stem

__all__ = [
    "DIRECTIONAL",
    "NEGATIONS",
    "NUMBER_WORDS",
    "PERSONS",
    "STOP_WORDS",
    "WH_WORDS",
    "Analysis",
    "analyse",
]


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
