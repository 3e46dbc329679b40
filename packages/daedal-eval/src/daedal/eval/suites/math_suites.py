"""GSM8K and MATH500: the paper's math prompt, boxed-answer extraction and normalisation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from daedal.eval.scoring.math import extract_answer, is_equivalent
from daedal.eval.suites.base import Score, Suite

__all__ = ["MATH_INSTRUCTION", "math_user_message"]

#: The user turn of GSM8K and MATH500 before the question (reference semantics E4, byte for byte;
#: note the space before the first newline).
MATH_INSTRUCTION = (
    "You are a math expert. You will be given a question to solve. Solve it step by step. "
    "Wrap the final answer in a \\boxed{}. \nRespond in the following format:\n<reasoning>\n"
    "Your reasoning here\n</reasoning>\n<answer>\n\\boxed{...}\n</answer>\n\n"
)


def math_user_message(question: str) -> str:
    """The user turn for a math question (the template strips the trailing newlines)."""
    return MATH_INSTRUCTION + question + "\n\n"


@attrs.frozen(kw_only=True)
class _MathSuite(Suite):
    question_field: ClassVar[str] = "question"
    pad_strings: ClassVar[tuple[str, ...]] = ("<|endoftext|>",)

    def user_message(self, doc: Mapping[str, Any]) -> str:
        return math_user_message(doc[self.question_field])

    def score(self, doc: Mapping[str, Any], text: str) -> Score:
        target = self.target(doc)
        prediction = extract_answer(text)
        return Score(correct=is_equivalent(prediction, target), prediction=prediction)
