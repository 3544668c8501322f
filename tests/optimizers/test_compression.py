"""Prompt compression: lossless transforms, the quality guard's fallback, and the public result's accounting."""

from __future__ import annotations

import copy
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from contracts.tokens import count_message_tokens
from optimizers.compression import VERSION, compress_messages, transforms
from optimizers.compression.transforms import MIN_DUPLICATE_CHARS

MODEL = "gpt-4o-mini"
DOC = (
    "The Treaty of Westphalia was signed in 1648 in Osnabrück and Münster. It ended the Thirty Years' War and set\n"
    "out the principle of state sovereignty; historians at https://example.org/westphalia count 109 delegations.\n\n"
    "Karl Marx and Friedrich Engels, The Communist Manifesto, 1848, is a different text with a different date."
)
CODE = "```python\ndef f(x):  \n\n\n    return  x\t# keep   this\n```"
HEADER = "The following are multiple choice questions (with answers) about astronomy."


def squash(text: str) -> str:
    return " ".join(text.split())


def text_of(messages: list[dict]) -> str:
    """The messages' text without the omission markers (which quote the first words of what they replace)."""
    text = "\n".join(m["content"] for m in messages if isinstance(m.get("content"), str))
    return re.sub(r"\[repeated text omitted[^\]]*\]", "[marker]", text)


def mmlu_5shot() -> list[dict]:
    shots = [f"{HEADER}\n\nWhich planet is number {i} from the Sun?\nA. Mars\nB. Venus\nAnswer: A" for i in range(5)]
    final = f"{HEADER}\n\nWhat is the closest star to Earth, after the Sun?\nA. Proxima Centauri\nB. Sirius\nAnswer:"
    return [{"role": "user", "content": "\n\n".join([*shots, final])}]


def test_whitespace_normalisation_is_lossless_outside_code():
    prose = (
        "Hello  there, friend.   How are you?   \n\n\n\n"
        "  indented  line stays\nName  Age\nAnn   31  \n\n\nA\ttab  line\n"
    )
    msgs = [{"role": "user", "content": prose + CODE + "\n\n\nWhat is  2 + 2?  "}]
    result = compress_messages(msgs, MODEL)
    out = result.messages[0]["content"]
    assert result.status == "compressed" and "normalise_whitespace" in result.transforms
    assert squash(out) == squash(msgs[0]["content"])  # only whitespace changed
    assert "Hello there, friend. How are you?\n\n  indented  line stays" in out  # leading indentation kept
    assert "Name  Age\nAnn   31\n" in out  # space-aligned columns keep their inner spacing
    assert "A\ttab  line\n" in out  # a line with a tab may be tab-separated data: inner spacing kept
    assert all("\n\n\n" not in part for part in out.split(CODE)) and not out.endswith(" ")
    assert CODE in out


def test_json_minification_is_lossless():
    payload = {"b": [1.50, 2, {"s": "two  spaces \u00e9 \\n"}], "a": None, "n": 1e-7, "deep": {"k": [True, False]}}
    pretty = json.dumps(payload, indent=2, ensure_ascii=False).replace("1.5,", "1.50,")
    msgs = [
        {"role": "user", "content": f"Here is the record:\n{pretty}\nWhat is b?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": pretty},
    ]
    result = compress_messages(msgs, MODEL)
    assert result.status == "compressed" and "minify_json" in result.transforms
    tool_out = result.messages[2]["content"]
    assert "\n" not in tool_out and len(tool_out) < len(pretty)
    assert json.loads(tool_out) == json.loads(pretty)
    assert '"two  spaces é \\\\n"' in tool_out and "1.50" in tool_out  # string and number literals byte-exact
    user_out = result.messages[0]["content"]
    blob = user_out.split("\n")[1]
    assert json.loads(blob) == payload and user_out.endswith("What is b?")


def test_json_that_is_not_a_standalone_blob_is_left_alone():
    text = "[1, 2, 3] are the first numbers.\n{not json: here}\n"
    msgs = [{"role": "user", "content": text + "Which is largest?"}]
    result = compress_messages(msgs, MODEL)
    assert result.status == "unchanged" and result.messages is msgs


def test_duplicated_context_block_is_removed_once_and_the_first_copy_kept():
    msgs = [
        {"role": "system", "content": "You answer from the document."},
        {"role": "user", "content": f"Document:\n{DOC}\n\nQuestion: When was it signed?"},
        {"role": "assistant", "content": "In 1648."},
        {"role": "user", "content": f"Document:\n{DOC}\n\nQuestion: How many delegations were there?"},
    ]
    assert len(DOC) >= MIN_DUPLICATE_CHARS
    result = compress_messages(msgs, MODEL)
    out = text_of(result.messages)
    assert result.status == "compressed" and "dedupe_blocks" in result.transforms
    assert out.count("Treaty of Westphalia was signed") == 1
    assert result.messages[1]["content"] == msgs[1]["content"]  # the first copy is untouched
    last = result.messages[3]["content"]
    assert last.startswith('[repeated text omitted: identical to the earlier passage with "The Treaty of Westphalia')
    assert last.endswith("Question: How many delegations were there?")


def test_a_document_pasted_every_turn_becomes_one_marker_per_turn():
    instr = "Answer using only the document below and say so if it is not there."
    questions = ["When was it signed?", "Where was it signed?", "Who wrote the Manifesto?", "In which year?"]
    msgs: list[dict] = [{"role": "system", "content": "Be exact."}]
    for i, q in enumerate(questions):
        if i:
            msgs.append({"role": "assistant", "content": f"Answer {i}."})
        msgs.append({"role": "user", "content": f"{instr}\n\nDocument:\n{DOC}\n\nQuestion: {q}"})
    result = compress_messages(msgs, MODEL)
    users = [m["content"] for m in result.messages if m["role"] == "user"]
    assert users[0] == msgs[1]["content"]
    for later, q in zip(users[1:], questions[1:], strict=True):
        assert later.startswith(f'[repeated text omitted: identical to the earlier passage with "{instr[:30]}')
        assert later.endswith(f"]\n\nQuestion: {q}") and later.count("[repeated text omitted") == 1
    assert text_of(result.messages).count("Treaty of Westphalia was signed") == 1


def test_repeated_system_message_and_double_send_are_dropped():
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": "7"},
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name another prime."},
        {"role": "user", "content": "Name another prime."},
    ]
    result = compress_messages(msgs, MODEL)
    assert [m["role"] for m in result.messages] == ["system", "user", "assistant", "user"]
    assert result.messages[-1] is msgs[-1]


def test_code_blocks_are_byte_identical():
    tilde = "~~~\n  a  \t b  \n\n\n\n~~~~"
    msgs = [{"role": "user", "content": f"Fix   this:  \n\n\n\n{CODE}\n\n\n\nand  this:\n{tilde}\n\nWhy does it fail?"}]
    result = compress_messages(msgs, MODEL)
    out = result.messages[0]["content"]
    assert result.status == "compressed"
    assert CODE in out and tilde in out
    assert out.startswith("Fix this:\n\n```")


def test_repeated_few_shot_header_is_kept_once_and_examples_are_intact():
    msgs = mmlu_5shot()
    result = compress_messages(msgs, MODEL)
    out = result.messages[0]["content"]
    assert result.status == "compressed" and result.transforms == ("trim_boilerplate",)
    assert out.count(HEADER) == 1 and out.startswith(HEADER)
    for i in range(5):
        assert f"Which planet is number {i} from the Sun?\nA. Mars\nB. Venus\nAnswer: A" in out
    original_lines = {squash(line) for line in msgs[0]["content"].split("\n") if line.strip()}
    assert all(line in squash(out) for line in original_lines)  # every line still somewhere: nothing lost


def test_repeated_cot_lead_in_is_kept_once_but_not_in_the_final_cue():
    shots = [
        f"Question: Tom has {i} figs and buys {i + 2}. How many?\nAnswer: Let's think step by step. It is {2 * i + 2}."
        for i in range(4)
    ]
    final = "Question: Ann has 3 pears and eats one. How many are left?\nAnswer: Let's think step by step."
    msgs = [{"role": "user", "content": "\n\n".join([*shots, final])}]
    result = compress_messages(msgs, MODEL)
    out = result.messages[0]["content"]
    assert out.count("Let's think step by step.") == 2  # first shot and the final cue
    assert out.endswith(final)
    assert "Answer: It is 4." in out  # the shot's own content stays


def test_answer_lines_that_repeat_are_content_not_boilerplate():
    shots = [f"Question: Is {i} a number?\nAnswer: The answer is A. It is." for i in range(4)]
    msgs = [{"role": "user", "content": "\n\n".join([*shots, "Question: Is x a number?\nAnswer:"])}]
    result = compress_messages(msgs, MODEL)
    assert result.status == "unchanged"
    assert result.messages is msgs


def _drop_number_42(work):
    for mw in work:
        for seg in mw.segments:
            seg.units = [u._replace(text=u.text.replace("42", "")) for u in seg.units]
    return True


def test_guard_falls_back_to_the_original_when_a_number_is_lost(monkeypatch):
    monkeypatch.setattr(transforms, "normalise_whitespace", _drop_number_42)
    msgs = [{"role": "user", "content": "The  answer to everything is 42.\n\n\nIs that right?"}]
    result = compress_messages(msgs, MODEL)
    assert result.status == "fallback"
    assert result.messages is msgs
    assert result.fallback_reason == "number lost: 42"
    assert result.tokens_after == result.tokens_before and result.tokens_saved == 0
    assert result.quality_score < 1.0
    assert "normalise_whitespace" in result.transforms


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("https://example.org/a", "https://example.org/", "url lost: https://example.org/a"),
        ("return  x", "return x", "code block lost: ```python"),
    ],
)
def test_guard_falls_back_when_a_url_or_code_block_is_lost(monkeypatch, old, new, reason):
    def mangle(work):
        for mw in work:
            for seg in mw.segments:
                seg.units = [u._replace(text=u.text.replace(old, new)) for u in seg.units]
        return True

    monkeypatch.setattr(transforms, "normalise_whitespace", mangle)
    msgs = [{"role": "user", "content": f"See https://example.org/a and:\n\n{CODE}\n\nWhat breaks?"}]
    result = compress_messages(msgs, MODEL)
    assert result.status == "fallback" and result.messages is msgs
    assert result.fallback_reason is not None and result.fallback_reason.startswith(reason)


def test_guard_falls_back_when_the_final_question_is_lost(monkeypatch):
    def drop_last_line(work):
        seg = work[-1].segments[-1]
        seg.units = seg.units[:-1]
        return True

    monkeypatch.setattr(transforms, "normalise_whitespace", drop_last_line)
    msgs = [{"role": "user", "content": "Context line.\nWhat is the capital of France?"}]
    result = compress_messages(msgs, MODEL)
    assert result.status == "fallback" and result.messages is msgs
    assert result.fallback_reason == "final question lost: What is the capital of France?"


def test_soft_entity_loss_respects_min_quality(monkeypatch):
    def drop_entity(work):
        seg = work[0].segments[0]
        seg.units = [u._replace(text=u.text.replace("Karl Marx", "he")) for u in seg.units]
        return True

    monkeypatch.setattr(transforms, "normalise_whitespace", drop_entity)
    msgs = [{"role": "user", "content": "Karl Marx wrote about Friedrich Engels, Adam Smith and David Ricardo.\nWho?"}]
    strict = compress_messages(msgs, MODEL)
    assert strict.status == "fallback" and strict.messages is msgs
    assert strict.fallback_reason is not None and strict.fallback_reason.endswith("entity lost: Karl Marx")
    lenient = compress_messages(msgs, MODEL, min_quality=0.5)
    assert lenient.status == "compressed" and 0.5 <= lenient.quality_score < 1.0
    assert "Karl Marx" not in lenient.messages[0]["content"]


def test_a_transform_that_raises_costs_the_savings_not_the_request(monkeypatch):
    def boom(work):
        raise RuntimeError("bug")

    monkeypatch.setattr(transforms, "dedupe_blocks", boom)
    msgs = mmlu_5shot()
    result = compress_messages(msgs, MODEL)
    assert result.status == "fallback" and result.messages is msgs
    assert result.fallback_reason == "error: RuntimeError('bug')"


def test_last_user_question_survives_when_its_message_repeats_everything():
    question = "Given all that, which treaty ended the Thirty Years' War?"
    msgs = [
        {"role": "user", "content": f"{DOC}\n\nSummarise it."},
        {"role": "assistant", "content": "A summary."},
        {"role": "user", "content": f"{DOC}\n\n{DOC}\n\n{question}"},
    ]
    result = compress_messages(msgs, MODEL)
    last = text_of(result.messages[-1:])
    assert result.status == "compressed"
    assert last == f"[marker]\n\n[marker]\n\n{question}"


def test_a_final_message_that_is_only_code_is_not_replaced_by_a_marker():
    code = "```python\n" + "\n".join(f"step_{i} = compute({i})" for i in range(30)) + "\n```"
    msgs = [
        {"role": "user", "content": f"Review:\n\n{code}"},
        {"role": "assistant", "content": "Looks fine."},
        {"role": "user", "content": code},
    ]
    result = compress_messages(msgs, MODEL)
    assert result.messages[-1]["content"] == code


def test_final_paragraph_is_protected_from_boilerplate_removal():
    instr = "Solve the following problem and explain your reasoning briefly."
    shots = [f"{instr}\nQuestion: What is {i} plus {i}?\nAnswer: {2 * i}" for i in range(4)]
    final = f"{instr}\nQuestion: What is 9 plus 9?\nAnswer:"
    msgs = [{"role": "user", "content": "\n\n".join([*shots, final])}]
    result = compress_messages(msgs, MODEL)
    out = result.messages[0]["content"]
    assert out.count(instr) == 2 and out.startswith(instr) and out.endswith(final)


def test_tokens_saved_is_the_tiktoken_difference():
    msgs = [
        *mmlu_5shot(),
        {"role": "assistant", "content": "B"},
        {"role": "user", "content": f"{DOC}\n\n{DOC}\n\nWhy?"},
    ]
    result = compress_messages(msgs, MODEL)
    assert result.status == "compressed" and result.version == VERSION
    assert result.tokens_before == count_message_tokens(msgs, MODEL)
    assert result.tokens_after == count_message_tokens(result.messages, MODEL)
    assert result.tokens_saved == result.tokens_before - result.tokens_after > 0


def test_input_is_not_mutated_and_non_text_parts_are_untouched():
    image = {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}}
    call = {"id": "c9", "type": "function", "function": {"name": "f", "arguments": '{"a":  1}'}}
    msgs = [
        {"role": "system", "content": "Be   brief.  "},
        {"role": "user", "content": [{"type": "text", "text": f"{DOC}\n\n\n\nLook:"}, image]},
        {"role": "assistant", "content": "Calling   f.", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c9", "content": '{\n  "ok":   true\n}'},
        {"role": "user", "content": [{"type": "text", "text": f"{DOC}\n\nWhat is in the   picture?"}]},
    ]
    frozen = copy.deepcopy(msgs)
    result = compress_messages(msgs, MODEL)
    assert msgs == frozen
    assert result.status == "compressed"
    assert result.messages[1]["content"][1] is image
    assert result.messages[2]["tool_calls"] == [call] and result.messages[2]["content"] == "Calling f."
    assert result.messages[3] == {"role": "tool", "tool_call_id": "c9", "content": '{"ok":true}'}
    assert result.messages[4]["content"][0]["text"].endswith("What is in the picture?")
    again = compress_messages(msgs, MODEL)
    assert again.messages == result.messages  # deterministic


def test_an_assistant_prefill_is_left_exactly_as_sent():
    prefill = {"role": "assistant", "content": "Sure.   The  answer is "}
    msgs = [{"role": "user", "content": "Say   it.  \n\n\n\nNow."}, prefill]
    result = compress_messages(msgs, MODEL)
    assert result.status == "compressed"
    assert result.messages[0]["content"] == "Say it.\n\nNow." and result.messages[1] is prefill


@pytest.mark.parametrize(
    "msgs",
    [
        [{"role": "user", "content": "What is 2 + 2?"}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
        [],
    ],
)
def test_nothing_to_do_is_unchanged_and_returns_the_same_list(msgs):
    result = compress_messages(msgs, MODEL)
    assert result.status == "unchanged" and result.messages is msgs
    assert result.transforms == () and result.tokens_saved == 0 and result.fallback_reason is None
    assert result.quality_score == 1.0


def test_marker_costs_less_than_the_passage_it_replaces():
    marker = transforms.MARKER.format(preview=" ".join(["word"] * 8))
    assert count_message_tokens([{"role": "user", "content": marker}]) * 4 < MIN_DUPLICATE_CHARS
    assert re.search(r"\d", marker) is None  # a marker never brings in a number


def test_bench_builds_every_family_from_a_prompts_file(tmp_path):
    rows = [f"Sam has {i} marbles and gives away {i // 2}.  How many are left?" for i in range(12)]
    path = tmp_path / "prompts.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["prompt"])
        writer.writerows([r] for r in rows)
    bench = Path(__file__).resolve().parents[2] / "bench" / "compression.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--prompts", str(path), "--per-family", "4"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    headline = json.loads(done.stdout.strip().splitlines()[-1])
    assert headline["bench"] == "compression" and headline["prompts"] == 4 * 4 + 3 * 2
    assert headline["guard_retention_pct"] == 100.0 and headline["independent_check_failures"] == 0
    assert headline["fewshot_tokens_saved_pct"] > 0 and headline["transcript_tokens_saved_pct"] > 0
