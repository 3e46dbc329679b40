"""GSM8K / MATH500 scoring: extraction, each normalisation rule, equivalence, gold vs perturbed."""

from __future__ import annotations

import pytest

from daedal.eval.scoring.math import extract_answer, find_last_boxed, gsm8k_target, is_correct, is_equivalent, normalize
from daedal.eval.suites.gsm8k import GSM8K
from daedal.eval.suites.math500 import MATH500
from tests.eval.eval_helpers import boxed_response


def _perturb(target: str) -> str:
    """A wrong answer near the gold one: a number plus one, anything else with "+1" appended."""
    try:
        value = float(target.replace(",", ""))
    except ValueError:
        return target + "+1"
    return str(int(value) + 1) if value == int(value) else str(value + 1)


def _accuracy(suite, docs, texts) -> float:
    scores = suite.score_many(docs, texts)
    return 100.0 * sum(s.correct for s in scores) / len(scores)


def test_gsm8k_gold_answers_score_100_and_perturbed_score_0(gsm8k_path):
    suite = GSM8K(path=gsm8k_path)
    docs = suite.load()
    assert len(docs) == 1319
    gold = [boxed_response(suite.target(d)) for d in docs]
    assert _accuracy(suite, docs, gold) == 100.0
    wrong = [boxed_response(_perturb(suite.target(d))) for d in docs]
    assert _accuracy(suite, docs, wrong) == 0.0


def test_math500_gold_answers_score_100_and_perturbed_score_0(math500_path):
    suite = MATH500(path=math500_path)
    docs = suite.load()
    assert len(docs) == 10
    assert _accuracy(suite, docs, [boxed_response(d["answer"]) for d in docs]) == 100.0
    assert _accuracy(suite, docs, [boxed_response(_perturb(d["answer"])) for d in docs]) == 0.0


def test_gsm8k_target_is_the_text_after_the_marker():
    assert gsm8k_target("She makes 9 * 2 = $<<9*2=18>>18.\n#### 18") == "18"
    with pytest.raises(ValueError, match="####"):
        gsm8k_target("no final answer here")


# -- normalisation, one rule at a time (paper-results §5, step 2) ----------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  42 \n", "42"),  # strip
        ("1,234", "1234"),  # thousands commas
        ("1,234,567", "1234567"),
        ("(1,2)", "(1,2)"),  # not a thousands group: kept
        ("4\n2", "42"),  # newlines
        ("10\\!000", "10000"),  # \!
        ("\\\\frac{1}{3}", "\\frac{1}{3}"),  # \\ -> \
        ("\\tfrac{1}{3}", "\\frac{1}{3}"),  # tfrac
        ("\\dfrac{2}{3}", "\\frac{2}{3}"),  # dfrac
        ("\\left(3, 4\\right)", "(3,4)"),  # \left \right
        ("90^\\circ", "90"),  # degrees
        ("90^{\\circ}", "90"),
        ("\\$18", "18"),  # \$
        ("50\\%", "50"),  # \%
        ("10\\text{ cm}", "10"),  # trailing unit
        ("\\text{Evelyn}", "\\text{Evelyn}"),  # no space after the brace: not a unit
        (".25", "0.25"),  # leading .
        ("3 .25", "30.25"),  # " ." -> " 0." (then spaces go)
        ("x=5", "5"),  # short left side
        ("k = 7", "7"),
        ("abc=5", "abc=5"),  # long left side: kept
        ("\\sqrt2", "\\sqrt{2}"),  # \sqrtX
        ("3\\sqrt{13}", "3\\sqrt{13}"),
        ("p - q", "p-q"),  # spaces
        ("\\frac12", "\\frac{1}{2}"),  # \fracab
        ("\\frac1{72}", "\\frac{1}{72}"),
        ("0.5", "\\frac{1}{2}"),  # 0.5
        (".5", "\\frac{1}{2}"),
        ("3/4", "\\frac{3}{4}"),  # a/b
        ("x/4", "x/4"),  # not two integers: kept
        ("1/2/3", "1/2/3"),
        ("", ""),
    ],
)
def test_normalisation_rule(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("prediction", "target", "same"),
    [
        ("18.0", "18", True),  # numeric comparison
        ("18.0000001", "18", True),  # within 1e-6
        ("18.01", "18", False),
        ("1,000", "1000", True),
        ("\\frac12", "\\dfrac{1}{2}", True),
        ("0.5", "\\frac{1}{2}", True),
        ("\\$5", "5", True),
        ("x = 3", "3", True),
        ("p-q", "p - q", True),
        ("q - p", "p - q", False),
        ("1e3", "1000", True),
        ("\\frac{1}{3}", "0.333333", False),  # only normalised floats are compared numerically
    ],
)
def test_equivalence(prediction, target, same):
    assert is_equivalent(prediction, target) is same


# -- extraction edge cases --------------------------------------------------------------


def test_no_boxed_uses_the_whole_text():
    text = "The answer is 42"
    assert extract_answer(text) == text
    assert not is_correct(text, "42")
    assert is_correct("42", "42")


def test_nested_braces_are_matched():
    assert extract_answer("so \\boxed{\\frac{1}{\\sqrt{2}}} done") == "\\frac{1}{\\sqrt{2}}"
    assert find_last_boxed("a \\boxed{{1}{2}} b") == "\\boxed{{1}{2}}"


def test_the_last_boxed_wins():
    assert extract_answer("first \\boxed{1}, then \\boxed{2}") == "2"


def test_boxed_with_a_space_runs_to_the_next_dollar():
    assert extract_answer("$\\boxed 5$ and more") == "5"


def test_fbox_is_a_fallback_for_boxed():
    assert extract_answer("\\fbox{7}") == "7"
    assert extract_answer("\\fbox{7} \\boxed{8}") == "8"


def test_answer_tag_is_used_only_when_braces_do_not_close():
    assert extract_answer("<answer> 12 </answer> \\boxed{12") == "12"
    assert extract_answer("<answer>7</answer> \\boxed{8}") == "8"
    assert extract_answer("<answer>7</answer> no box") == "<answer>7</answer> no box"
    unclosed_without_tag = "\\boxed{12"
    assert extract_answer(unclosed_without_tag) == unclosed_without_tag


def test_padding_after_the_answer_does_not_matter():
    assert is_correct(boxed_response("3\\sqrt{13}", pad=50), "3\\sqrt{13}")
