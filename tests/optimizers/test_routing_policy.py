"""The learned router: training on feedback, the policy file, and decisions, in both feature modes.

The feedback is synthetic and small (~150 prompts): easy multiple-choice facts that the weak model answered right,
and long multi-step word problems it got wrong while the strong model got them right. A router that learned
anything must send unseen prompts of each kind to the matching tier.

``lexical`` (the default) must never touch the embedder, in training or in ``decide``; ``embedding+lexical`` embeds
the prompts (once per module, memoised). Tests that hold for both take the parametrised ``policy_dict``.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson
import polars as pl
import pytest

import optimizers.embeddings
from optimizers.routing.classifier import score_with
from optimizers.routing.features import LEXICAL_FEATURES, lexical_features, lexical_matrix
from optimizers.routing.feedback import feedback_from_routellm, pair_feedback
from optimizers.routing.policy import PolicyFileError, RoutingDecision, RoutingPolicy
from optimizers.routing.train import policy_version, train_policy, write_policy

LEXICAL: Final = "lexical"
EMBEDDING: Final = "embedding+lexical"
STRONG = "gpt-4-1106-preview"
WEAK = "together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1"
PRICES = {STRONG: (1e-5, 3e-5), WEAK: (6e-7, 6e-7)}

_FACTS = [
    ("What colour is the sky on a clear day?", "Blue", "Green", "Red", "Black"),
    ("Which animal barks?", "Dog", "Cat", "Fish", "Bird"),
    ("What is the capital of France?", "Paris", "Rome", "Berlin", "Madrid"),
    ("How many legs does a spider have?", "Eight", "Six", "Four", "Ten"),
    ("Which planet do we live on?", "Earth", "Mars", "Venus", "Jupiter"),
    ("What do bees make?", "Honey", "Milk", "Silk", "Wax paper"),
    ("Which season is the coldest?", "Winter", "Summer", "Spring", "Autumn"),
    ("What is frozen water called?", "Ice", "Steam", "Fog", "Sand"),
]
_NAMES = ["Alice", "Bob", "Carla", "Deepak", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas"]
_SURNAMES = ["Smith", "Okafor", "Tanaka", "Rossi", "Novak", "Silva", "Berg", "Kaur", "Dubois"]


def person(i: int) -> str:
    """A distinct name for i < 90, so every synthetic prompt is distinct."""
    return f"{_NAMES[i % 10]} {_SURNAMES[(i // 10) % 9]}"


def easy_prompt(i: int) -> str:
    q, *opts = _FACTS[i % len(_FACTS)]
    rot = i % 4
    opts = opts[rot:] + opts[:rot]
    return f"{q} ({person(i)} asks)\n" + "\n".join(f"{k}. {o}" for k, o in zip("ABCD", opts, strict=True)) + "\nAnswer:"


def hard_prompt(i: int) -> str:
    name = person(i)
    a, b, c, d = 12 + 7 * i, 3 + i % 5, 150 + 11 * i, 4 + i % 3
    return (
        f"{name} runs a bakery. On Monday {name} bakes {a} loaves and sells {b} times as many rolls as loaves at "
        f"${c / 100:.2f} each, then spends {d * 9}% of the takings on flour. On Tuesday the sales grow by "
        f"{d * 5}% and {name} gives away {b + 2} loaves. If each loaf sells for ${(c + 75) / 100:.2f}, how much "
        f"money does {name} have left after both days? Calculate the total step by step."
    )


def synthetic_feedback(n: int = 75, offset: int = 0) -> pl.DataFrame:
    rows: list[dict[str, Any]] = []
    for i in range(offset, offset + n):
        for prompt, weak, subject in ((easy_prompt(i), 1.0, f"facts{i % 3}"), (hard_prompt(i), 0.0, f"math{i % 3}")):
            rows.append({"prompt": prompt, "model": STRONG, "score": 1.0, "subject": subject})
            rows.append({"prompt": prompt, "model": WEAK, "score": weak, "subject": subject})
    # Noise a real feedback table has: another model's rows (ignored) and a weak win on a hard prompt.
    rows.append({"prompt": easy_prompt(0), "model": "some-other-model", "score": 0.5, "subject": "facts0"})
    rows[3]["score"] = 1.0
    return pl.DataFrame(rows)


def refuse_embed(texts: list[str]) -> np.ndarray:
    raise AssertionError("a lexical policy must not embed anything")


def two_kb_prompt() -> str:
    """A 2 KB prompt the synthetic feedback has not seen: a few word problems in a row."""
    text = " ".join(hard_prompt(600 + i) for i in range(8))
    return text[:2048]


class CachedEmbed:
    """The real embedder, memoised: the module trains several times on the same prompts."""

    def __init__(self) -> None:
        self.vectors: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        from optimizers.embeddings import get_embedder

        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            self.vectors.update(zip(missing, get_embedder().encode(missing), strict=True))
        return np.stack([self.vectors[t] for t in texts])


@pytest.fixture(scope="module")
def embed() -> CachedEmbed:
    return CachedEmbed()


@pytest.fixture(scope="module")
def feedback() -> pl.DataFrame:
    return synthetic_feedback()


@pytest.fixture
def no_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any use of the shared embedder fails the test."""

    def refuse() -> None:
        raise AssertionError("the embedder was loaded")

    monkeypatch.setattr(optimizers.embeddings, "get_embedder", refuse)


@pytest.fixture(scope="module")
def lexical_dict(feedback: pl.DataFrame) -> dict[str, Any]:
    """The default mode: no ``features`` argument, and an ``embed`` that fails if called."""
    return train_policy(feedback, STRONG, WEAK, prices=PRICES, embed=refuse_embed)


@pytest.fixture(scope="module")
def embedding_dict(feedback: pl.DataFrame, embed: CachedEmbed) -> dict[str, Any]:
    return train_policy(feedback, STRONG, WEAK, prices=PRICES, features=EMBEDDING, embed=embed)


@pytest.fixture(params=[LEXICAL, EMBEDDING])
def policy_dict(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Each mode's policy, trained once per module; with the lexical one, any use of the embedder fails."""
    if request.param == LEXICAL:
        request.getfixturevalue("no_embedder")
        return request.getfixturevalue("lexical_dict")
    return request.getfixturevalue("embedding_dict")


@pytest.fixture
def policy_file(policy_dict: dict[str, Any], tmp_path: Path) -> Path:
    return write_policy(policy_dict, tmp_path / "policies" / "routing.json")


@pytest.fixture
def lexical_file(lexical_dict: dict[str, Any], tmp_path: Path) -> Path:
    return write_policy(lexical_dict, tmp_path / "policies" / "lexical.json")


@pytest.fixture
def embedding_file(embedding_dict: dict[str, Any], tmp_path: Path) -> Path:
    return write_policy(embedding_dict, tmp_path / "policies" / "embedding.json")


def test_policy_file_round_trips(policy_dict: dict[str, Any], policy_file: Path) -> None:
    assert orjson.loads(policy_file.read_bytes()) == policy_dict
    assert [p.name for p in policy_file.parent.iterdir()] == ["routing.json"]  # no temp file left behind
    loaded = RoutingPolicy.load(policy_file)
    assert loaded.policy_version == policy_dict["policy_version"] == policy_version(policy_dict)
    assert (loaded.strong_model, loaded.weak_model) == (STRONG, WEAK)
    assert loaded.default_quality_target == 0.95
    assert [p.quality_target for p in loaded.operating_points] == [0.9, 0.95, 0.98, 1.0]
    assert loaded.features == policy_dict["classifier"]["features"]
    in_memory = RoutingPolicy.from_dict(policy_dict)
    prompts = [hard_prompt(500), easy_prompt(500)]
    assert loaded.score(prompts[0]) == pytest.approx(in_memory.score(prompts[0]), abs=1e-9)
    # One prompt and many, and the training-side arithmetic (which chose the thresholds), agree.
    many = loaded.score_many(prompts)
    assert many.tolist() == pytest.approx([loaded.score(p) for p in prompts], abs=1e-9)
    vectors = optimizers.embeddings.get_embedder().encode(prompts) if loaded.uses_embedding else None
    assert score_with(policy_dict["classifier"], vectors, lexical_matrix(prompts)) == pytest.approx(many, abs=1e-6)
    assert policy_dict["trained_rows"] == 150
    assert policy_dict["threshold_selection"]["grouped_by"] == "subject"


def test_lexical_policy_header_fields(lexical_dict: dict[str, Any], lexical_file: Path) -> None:
    assert lexical_dict["kind"] == "apex.routing_policy"
    assert lexical_dict["schema"] == 1
    assert lexical_dict["classifier"]["features"] == LEXICAL
    assert lexical_dict["classifier"]["lexical_features"] == list(LEXICAL_FEATURES)
    assert set(lexical_dict["classifier"]["heads"]["strong"]) == {"lexical_weights", "bias"}
    assert len(lexical_dict["feedback_sha256"]) == 64
    # No embedding model, dimension, weights or penalty anywhere in the file.
    assert b"embedding" not in lexical_file.read_bytes()
    assert len(orjson.dumps(lexical_dict)) < 5_000


def test_embedding_policy_header_fields(embedding_dict: dict[str, Any]) -> None:
    from optimizers.embeddings import DIMENSION, MODEL_ID

    assert embedding_dict["embedding_model"] == MODEL_ID
    assert embedding_dict["classifier"]["features"] == EMBEDDING
    assert embedding_dict["classifier"]["embedding_dim"] == DIMENSION
    assert len(embedding_dict["classifier"]["heads"]["weak"]["embedding_weights"]) == DIMENSION
    assert embedding_dict["classifier"]["lexical_features"] == list(LEXICAL_FEATURES)
    assert len(orjson.dumps(embedding_dict)) < 40_000  # a linear model, not a copy of the training set


def test_lexical_default_never_embeds(feedback: pl.DataFrame, tmp_path: Path, no_embedder: None) -> None:
    policy_dict = train_policy(feedback, STRONG, WEAK, prices=PRICES)  # the default embedder would fail
    policy = RoutingPolicy.load(write_policy(policy_dict, tmp_path / "p.json"))
    assert policy.features == LEXICAL and not policy.uses_embedding and policy.embedding_model is None
    assert policy.decide(hard_prompt(350)).tier == "strong"
    assert policy.decide(easy_prompt(350)).tier == "weak"
    assert policy.score_many([hard_prompt(351), easy_prompt(351)]).shape == (2,)
    with pytest.raises(ValueError, match="features"):
        train_policy(feedback, STRONG, WEAK, prices=PRICES, features="embedding")  # type: ignore[arg-type]


def test_version_depends_on_content_not_time(
    feedback: pl.DataFrame, lexical_dict: dict[str, Any], embedding_dict: dict[str, Any]
) -> None:
    again = train_policy(feedback.reverse(), STRONG, WEAK, prices=PRICES)  # same rows, other order
    assert again["policy_version"] == lexical_dict["policy_version"] == policy_version(lexical_dict)
    assert again["feedback_sha256"] == lexical_dict["feedback_sha256"]
    other = train_policy(synthetic_feedback(70), STRONG, WEAK, prices=PRICES)
    assert other["policy_version"] != lexical_dict["policy_version"]
    # Same feedback, other feature mode: another policy.
    assert embedding_dict["feedback_sha256"] == lexical_dict["feedback_sha256"]
    assert embedding_dict["policy_version"] != lexical_dict["policy_version"]


def test_operating_points_are_monotone(policy_dict: dict[str, Any]) -> None:
    points = sorted(policy_dict["operating_points"], key=lambda p: p["quality_target"])
    shares = [p["expected_strong_share"] for p in points]
    thresholds = [p["threshold"] for p in points]
    costs = [p["expected_cost_per_1k_requests_usd"] for p in points]
    assert shares == sorted(shares) and shares[0] < shares[-1]
    assert thresholds == sorted(thresholds, reverse=True)
    assert costs == sorted(costs) and costs[0] < costs[-1]
    for p in points:
        assert p["expected_quality"] >= p["quality_target"] - 1e-9
    # Half the prompts need the strong model; a router that learned the split needs about half strong calls.
    at_95 = next(p for p in points if p["quality_target"] == 0.95)
    assert 0.4 <= at_95["expected_strong_share"] <= 0.6


def test_easy_prompt_routes_weak_and_hard_prompt_strong(policy_file: Path) -> None:
    policy = RoutingPolicy.load(policy_file)
    for i in (301, 302, 303):  # not in the training feedback
        easy = policy.decide(easy_prompt(i))
        hard = policy.decide(hard_prompt(i))
        assert isinstance(easy, RoutingDecision)
        assert (easy.tier, hard.tier) == ("weak", "strong"), (easy.reason, hard.reason)
        assert easy.score < easy.threshold <= hard.score
        assert easy.quality_target == hard.quality_target == 0.95
        assert "-> weak" in easy.reason and "-> strong" in hard.reason
        assert easy.reason.isascii() and hard.reason.isascii()  # the gateway sends it in a header (latin-1)
        assert hard.policy_version == policy.policy_version


def test_urgency_and_quality_target(policy_file: Path) -> None:
    policy = RoutingPolicy.load(policy_file)
    easy = easy_prompt(310)
    high = policy.decide(easy, urgency="high")
    assert high.tier == "strong" and "urgency high" in high.reason and high.reason.isascii()
    if policy.uses_embedding:
        assert np.isnan(high.score)  # not embedded: urgent calls skip the slow part
    else:
        assert high.score == pytest.approx(policy.score(easy)) and "score" in high.reason  # costs microseconds
    assert policy.decide(easy, urgency="high", quality_target=0.9).tier == "strong"
    low = policy.decide(easy, urgency="low")
    assert low.quality_target == 0.9 and low.tier == "weak"
    assert policy.decide(easy, urgency="low", quality_target=0.98).quality_target == 0.98
    assert policy.decide(easy, quality_target=0.96).quality_target == 0.98  # rounds up to a point that reaches it
    with pytest.raises(ValueError, match="urgency"):
        policy.decide(easy, urgency="asap")
    with pytest.raises(ValueError, match="quality_target"):
        policy.decide(easy, quality_target=1.5)


def test_lexical_decide_is_fast_and_ignores_vectors(lexical_file: Path, no_embedder: None) -> None:
    policy = RoutingPolicy.load(lexical_file)
    prompt = two_kb_prompt()
    assert len(prompt) == 2048
    assert policy.decide(prompt, vector=np.zeros(10)).score == policy.decide(prompt).score
    timings = []
    for _ in range(50):
        began = time.perf_counter()
        policy.decide(prompt)
        timings.append(time.perf_counter() - began)
    # ~0.15 ms on one core; the bound leaves room for a loaded shared CI machine.
    assert float(np.median(timings)) < 0.001


def test_embedding_decide_uses_a_given_vector(embedding_file: Path, embed: CachedEmbed) -> None:
    policy = RoutingPolicy.load(embedding_file)
    prompt = hard_prompt(320)
    vector = embed([prompt])[0]
    assert policy.decide(prompt, vector=vector).score == pytest.approx(policy.score(prompt), abs=1e-5)
    with pytest.raises(ValueError, match="384"):
        policy.score(prompt, vector=np.zeros(10))
    # A vector from elsewhere changes the score: decide() really used it instead of re-embedding.
    assert policy.score(prompt, vector=embed([easy_prompt(320)])[0]) != pytest.approx(policy.score(prompt))
    timings = []
    for i in range(20):
        began = time.perf_counter()
        policy.decide(easy_prompt(400 + i))  # embeds the prompt
        timings.append(time.perf_counter() - began)
    # The budget is 5 ms; the assertion leaves room for a loaded shared CI machine.
    assert float(np.median(timings)) < 0.05


def assert_refused(path: Path, mutate: Any, field: str) -> None:
    data = orjson.loads(path.read_bytes())
    mutate(data)
    path.write_bytes(orjson.dumps(data))
    with pytest.raises(PolicyFileError) as err:
        RoutingPolicy.load(path)
    assert str(path) in str(err.value)
    assert repr(field) in str(err.value)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("operating_points"), "operating_points"),
        (lambda d: d.update(kind="something.else"), "kind"),
        (lambda d: d.update(schema=2), "schema"),
        (lambda d: d["classifier"].pop("features"), "classifier.features"),
        (lambda d: d["classifier"].update(features="words"), "classifier.features"),
        (
            lambda d: d["classifier"]["heads"]["weak"].update(lexical_weights=[0.1]),
            "classifier.heads.weak.lexical_weights",
        ),
        (lambda d: d["classifier"]["heads"].update(strong=[1, 2]), "classifier.heads.strong"),
        (lambda d: d["classifier"]["lexical_scale"].__setitem__(0, "x"), "classifier.lexical_scale"),
        (lambda d: d["operating_points"][1].update(threshold=None), "operating_points[1].threshold"),
        (lambda d: d["operating_points"][0].update(quality_target=1.5), "operating_points[0].quality_target"),
        (lambda d: d.update(default_quality_target=0.5), "default_quality_target"),
        (lambda d: d["classifier"].update(lexical_features=["log_chars"]), "classifier.lexical_features"),
    ],
)
def test_corrupt_policy_file_names_the_field(policy_file: Path, mutate: Any, field: str) -> None:
    assert_refused(policy_file, mutate, field)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(embedding_model="other-model"), "embedding_model"),
        (lambda d: d.pop("embedding_model"), "embedding_model"),
        (lambda d: d["classifier"].update(embedding_dim=512), "classifier.embedding_dim"),
        (
            lambda d: d["classifier"]["heads"]["strong"].update(embedding_weights=[0.1, 0.2]),
            "classifier.heads.strong.embedding_weights",
        ),
        # An embedding policy relabelled lexical: its embedding weights would be silently dropped.
        (lambda d: d["classifier"].update(features=LEXICAL), "embedding_model"),
        (lambda d: (d.pop("embedding_model"), d["classifier"].update(features=LEXICAL)), "classifier.embedding_dim"),
    ],
)
def test_corrupt_embedding_policy_names_the_field(embedding_file: Path, mutate: Any, field: str) -> None:
    assert_refused(embedding_file, mutate, field)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(embedding_model="all-MiniLM-L6-v2-onnx-int8"), "embedding_model"),
        (lambda d: d["classifier"].update(embedding_dim=384), "classifier.embedding_dim"),
        (
            lambda d: d["classifier"]["heads"]["weak"].update(embedding_weights=[0.0] * 384),
            "classifier.heads.weak.embedding_weights",
        ),
        # A lexical policy relabelled embedding+lexical: it has no embedding model or weights to read.
        (lambda d: d["classifier"].update(features=EMBEDDING), "embedding_model"),
    ],
)
def test_corrupt_lexical_policy_names_the_field(lexical_file: Path, mutate: Any, field: str) -> None:
    assert_refused(lexical_file, mutate, field)


def test_unreadable_policy_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"kind": "apex.routing_policy", ')
    with pytest.raises(PolicyFileError, match="broken.json.*not valid JSON"):
        RoutingPolicy.load(broken)
    with pytest.raises(PolicyFileError, match="does not exist"):
        RoutingPolicy.load(tmp_path / "missing.json")


def test_write_policy_refuses_an_invalid_policy(policy_dict: dict[str, Any], tmp_path: Path) -> None:
    bad = dict(policy_dict, operating_points=[])
    with pytest.raises(PolicyFileError, match="operating_points"):
        write_policy(bad, tmp_path / "p.json")
    assert not (tmp_path / "p.json").exists()


def test_costs_need_prices(feedback: pl.DataFrame, no_embedder: None) -> None:
    policy = train_policy(feedback, STRONG, WEAK, prices={STRONG: (1e-5, 3e-5)})
    assert all(p["expected_cost_per_1k_requests_usd"] is None for p in policy["operating_points"])
    assert policy["cost_assumptions"]["prices_usd_per_token"][WEAK] is None


def test_weak_model_always_wrong_routes_everything_strong(feedback: pl.DataFrame, no_embedder: None) -> None:
    # The heads saturate: every score is 1.0 to the last bit, a tie no threshold can split.
    weak_wrong = pl.when(pl.col("model") == WEAK).then(0.0).otherwise(pl.col("score")).alias("score")
    policy = RoutingPolicy.from_dict(train_policy(feedback.with_columns(weak_wrong), STRONG, WEAK, prices=PRICES))
    assert [p.expected_strong_share for p in policy.operating_points] == [1.0, 1.0, 1.0, 1.0]
    for prompt in (easy_prompt(360), hard_prompt(360), "What is the capital of Spain?"):
        assert policy.decide(prompt).tier == "strong"


def test_feedback_validation(feedback: pl.DataFrame) -> None:
    paired = pair_feedback(feedback, STRONG, WEAK)
    assert len(paired) == 150 and set(paired.weak.tolist()) == {0.0, 1.0}
    bad = feedback.with_columns(pl.when(pl.col("model") == WEAK).then(2.0).otherwise(pl.col("score")).alias("score"))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pair_feedback(bad, STRONG, WEAK)
    with pytest.raises(ValueError, match="need >= 10"):
        pair_feedback(feedback.head(8), STRONG, WEAK)
    with pytest.raises(ValueError, match="missing columns"):
        pair_feedback(feedback.drop("score"), STRONG, WEAK)


def test_feedback_from_routellm(tmp_path: Path) -> None:
    csv = tmp_path / "dev.csv"
    csv.write_text(
        "benchmark,subject,prompt,weak_correct,strong_correct\n"
        'mmlu,astronomy,"Why is the sky blue?\nA. x\nB. y",True,False\n'
        "gsm8k,math,What is 2+3?,False,True\n"
    )
    long = feedback_from_routellm(csv)
    assert long.columns == ["prompt", "model", "score", "subject", "benchmark"]
    got = {(r["prompt"][:6], r["model"], r["score"]) for r in long.iter_rows(named=True)}
    assert got == {
        ("Why is", STRONG, 0.0),
        ("Why is", WEAK, 1.0),
        ("What i", STRONG, 1.0),
        ("What i", WEAK, 0.0),
    }
    csv.write_text("benchmark,subject,prompt,weak_correct,strong_correct\nmmlu,a,q,yes,True\n")
    with pytest.raises(ValueError, match="weak_correct"):
        feedback_from_routellm(csv)


def test_lexical_features_see_options_and_numbers() -> None:
    names = list(LEXICAL_FEATURES)
    easy = lexical_features(easy_prompt(0))
    hard = lexical_features(hard_prompt(0))
    assert easy[names.index("has_choices")] == 1.0 and hard[names.index("has_choices")] == 0.0
    assert hard[names.index("log_numbers")] > easy[names.index("log_numbers")]
    paired = "Which?\nA. Wrong, Wrong\nB. Wrong, Not wrong\nC. Not wrong, Wrong\nD. Not wrong, Not wrong\nAnswer:"
    assert lexical_features(paired)[names.index("option_overlap")] > 0.5
    assert easy[names.index("option_overlap")] == 0.0
    numeric = "x?\nA. 12\nB. \\frac{7}{9}\nC. 3.5\nD. apples\nAnswer:"
    assert lexical_features(numeric)[names.index("numeric_option_share")] == pytest.approx(0.75)


def test_fast_feature_patterns_count_like_the_plain_regexes() -> None:
    """features.py writes ``\\b<word>`` literal-first and pre-checks case-insensitive word lists (for speed on the
    request path); the counts must be those of the plain patterns, including the characters re.IGNORECASE folds."""
    plain = {
        "negated_question": (re.compile(r"\b(?:NOT|EXCEPT|LEAST)\b"), lambda n: float(n > 0)),
        "log_code_hints": (
            re.compile(r";\s*$|\bdef |\breturn\b|\bfunction\b|==|\bprint\(|#include", re.MULTILINE),
            math.log1p,
        ),
        "log_compute_words": (
            re.compile(
                r"\b(?:how many|how much|calculate|compute|solve|what is the value|total|percent|probability"
                r"|average)\b",
                re.IGNORECASE,
            ),
            math.log1p,
        ),
        "log_reasoning_words": (
            re.compile(
                r"\b(?:valid|invalid|argument|premise|conclusion|scenario|morally|logically|implies"
                r"|therefore)\b",
                re.IGNORECASE,
            ),
            math.log1p,
        ),
    }
    texts = [
        "Which is NOT true? xNOT NOTx _EXCEPT LEAST.",
        "def f():\n    return 1;\nundef returns reprint(1) print(2) a == b #include <x> function(){}",
        "How MANY apples; subtotal TOTAL totally Ṡolve ſolve İnvalid ınvalid valid. Therefore\u212a",
        "what is the value of x? Probability, AVERAGE-percent; a morally invalid argument implies a premise",
        "",
    ]
    names = list(LEXICAL_FEATURES)
    for text in texts:
        got = lexical_features(text)
        for name, (pattern, transform) in plain.items():
            assert got[names.index(name)] == transform(len(pattern.findall(text))), (name, text)
    assert lexical_features("Ṡolve it ſolve")[names.index("log_compute_words")] == math.log1p(1)  # ſ folds to s


def test_trains_without_subject_column(feedback: pl.DataFrame, no_embedder: None) -> None:
    policy = train_policy(feedback.drop("subject"), STRONG, WEAK, prices=PRICES, cv_folds=3)
    assert policy["threshold_selection"] == {
        "method": "out-of-fold scores, cheapest threshold reaching each target",
        "folds": 3,
        "grouped_by": "prompt hash",
    }
    decided = RoutingPolicy.from_dict(policy)
    assert decided.decide(hard_prompt(330)).tier == "strong"


def test_command_line_trains_and_writes(tmp_path: Path, feedback: pl.DataFrame, no_embedder: None) -> None:
    from optimizers.routing.train import main

    source = tmp_path / "feedback.parquet"
    feedback.write_parquet(source)
    out = tmp_path / "policy.json"
    assert main(["--feedback", str(source), "--strong", STRONG, "--weak", WEAK, "--out", str(out)]) == 0
    policy = RoutingPolicy.load(out)
    assert policy.features == LEXICAL
    assert policy.decide(hard_prompt(340)).tier == "strong"
