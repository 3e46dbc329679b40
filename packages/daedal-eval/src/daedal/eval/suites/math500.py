"""MATH500 (HuggingFaceH4/MATH-500, test split: 500 problems)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from daedal.eval.suites.math_suites import _MathSuite


@attrs.frozen(kw_only=True)
class MATH500(_MathSuite):
    """Competition math; the target is the ``answer`` field (LaTeX)."""

    name: ClassVar[str] = "math500"
    hub_id: ClassVar[str] = "HuggingFaceH4/MATH-500"
    hub_config: ClassVar[str | None] = None
    required_fields: ClassVar[tuple[str, ...]] = ("problem", "answer")
    question_field: ClassVar[str] = "problem"

    def target(self, doc: Mapping[str, Any]) -> str:
        return str(doc["answer"])
