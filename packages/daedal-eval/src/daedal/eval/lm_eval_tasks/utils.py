"""Prompts and scoring of the ``daedal_*`` lm-eval tasks: the daedal-eval suites' own.

Each task asks the suite for the user message (the paper's prompt, byte for byte) and
scores the generation with the suite in the paper's protocol, so an lm-eval run and a
``daedal eval run --protocol paper`` agree sample for sample. Pass
``assistant_prefix=<reasoning>`` in ``--model_args`` to end the prompt as the paper does.
"""

from __future__ import annotations

from typing import Any

from daedal.eval.suites.gsm8k import GSM8K
from daedal.eval.suites.humaneval import HumanEval
from daedal.eval.suites.math500 import MATH500
from daedal.eval.suites.mbpp import MBPP

SUITES = {
    "gsm8k": GSM8K(protocol="paper"),
    "math500": MATH500(protocol="paper"),
    "humaneval": HumanEval(protocol="paper"),
    "mbpp": MBPP(protocol="paper"),
}


def _text(name: str, doc: dict[str, Any]) -> str:
    return SUITES[name].user_message(doc)


def _results(name: str, doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    return {"acc": float(SUITES[name].score(doc, results[0]).correct)}


def gsm8k_text(doc: dict[str, Any]) -> str:
    return _text("gsm8k", doc)


def math500_text(doc: dict[str, Any]) -> str:
    return _text("math500", doc)


def humaneval_text(doc: dict[str, Any]) -> str:
    return _text("humaneval", doc)


def mbpp_text(doc: dict[str, Any]) -> str:
    return _text("mbpp", doc)


def gsm8k_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    return _results("gsm8k", doc, results)


def math500_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    return _results("math500", doc, results)


def humaneval_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    return _results("humaneval", doc, results)


def mbpp_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    return _results("mbpp", doc, results)
