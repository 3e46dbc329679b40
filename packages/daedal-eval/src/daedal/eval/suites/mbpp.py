"""MBPP (google-research-datasets/mbpp, config "full", test split: 500 problems)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from daedal.eval.scoring import paper_code
from daedal.eval.scoring.code import CodeTask, mbpp_task
from daedal.eval.suites.code_suites import CODE_FORMAT, _CodeSuite


@attrs.frozen(kw_only=True)
class MBPP(_CodeSuite):
    """Short Python problems with three asserts each; accuracy counts every problem.

    Attributes:
        test_roots: Keep the definitions the asserts call when sanitising (see
            :func:`~daedal.eval.scoring.code.mbpp_program`) in the default protocol; the
            paper protocol uses the paper's own sanitiser and ignores it.
    """

    name: ClassVar[str] = "mbpp"
    hub_id: ClassVar[str] = "google-research-datasets/mbpp"
    hub_config: ClassVar[str] = "full"
    required_fields: ClassVar[tuple[str, ...]] = ("task_id", "text", "test_list")
    pad_strings: ClassVar[tuple[str, ...]] = ("<|eot_id|>", "<|endoftext|>")

    test_roots: bool = True

    def user_message(self, doc: Mapping[str, Any]) -> str:
        tests = doc["test_list"]
        return (
            "\n"
            + doc["text"]
            + " Your code should pass these tests:\n\n"
            + f"{tests[0]}\n{tests[1]}\n{tests[2]} "
            + CODE_FORMAT
            + "The complete implementation of the function\n```\n</answer>"
        )

    def target(self, doc: Mapping[str, Any]) -> str:
        return str(doc.get("code", ""))

    def task_and_reason(self, doc: Mapping[str, Any], text: str) -> tuple[CodeTask | None, str]:
        if self.protocol == "paper":
            return paper_code.mbpp_task(doc, text)
        task = mbpp_task(doc, text, test_roots=self.test_roots)
        return task, "" if task is not None else "no code block or no function"
