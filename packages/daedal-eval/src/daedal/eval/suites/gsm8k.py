"""GSM8K (openai/gsm8k, config "main", test split: 1,319 problems)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from daedal.eval.scoring.math import gsm8k_target
from daedal.eval.suites.math_suites import _MathSuite


@attrs.frozen(kw_only=True)
class GSM8K(_MathSuite):
    """Grade-school math word problems; the target is the number after ``####``.

    Example::

        suite = GSM8K(path="gsm8k/test.jsonl", limit=50)
    """

    name: ClassVar[str] = "gsm8k"
    hub_id: ClassVar[str] = "openai/gsm8k"
    hub_config: ClassVar[str] = "main"
    required_fields: ClassVar[tuple[str, ...]] = ("question", "answer")
    question_field: ClassVar[str] = "question"

    def target(self, doc: Mapping[str, Any]) -> str:
        return gsm8k_target(doc["answer"])
