"""What HumanEval and MBPP share: sandbox settings and concurrent scoring."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from daedal.core.errors import ConfigError
from daedal.eval.suites.base import Score, Suite

#: Instructions after the problem in both code prompts (reference semantics E4).
CODE_FORMAT = (
    "\n\nFirst, reason about the solution step-by-step. Then, write the code.\nRespond in the following format:\n"
    "<reasoning>\nYour reasoning here\n</reasoning>\n<answer>\n```python\n"
)


def _positive_number(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"`{attribute.name}` must be a positive number, got {value!r}")


@attrs.frozen(kw_only=True)
class _CodeSuite(Suite):
    """Attributes (beyond :class:`Suite`'s):
        timeout: Wall-clock seconds per program.
        memory_mb: Address-space limit per program.
        workers: Programs run at the same time.
    """

    pad_strings: ClassVar[tuple[str, ...]] = ("<|eot_id|>", "<|endoftext|>")

    timeout: float = attrs.field(default=10.0, validator=_positive_number)
    memory_mb: int = attrs.field(default=2048, validator=_positive_number)
    workers: int = attrs.field(default=2, validator=_positive_number)

    def sandbox(self) -> Any:
        from daedal.eval.sandbox import Limits, Sandbox

        return Sandbox(Limits(timeout=float(self.timeout), memory_mb=int(self.memory_mb)))

    def program(self, doc: Mapping[str, Any], text: str) -> str | None:
        """The test program for a generation, or None when it is wrong without running."""
        raise NotImplementedError

    def score(self, doc: Mapping[str, Any], text: str) -> Score:
        return self.score_many([doc], [text])[0]

    def score_many(self, docs: Sequence[Mapping[str, Any]], texts: Sequence[str]) -> list[Score]:
        if len(docs) != len(texts):
            raise ConfigError(f"`texts` has {len(texts)} entries for {len(docs)} docs: pass one text per doc")
        programs = [self.program(d, t) for d, t in zip(docs, texts, strict=True)]
        runnable = [p for p in programs if p is not None]
        outcomes = iter(self.sandbox().run_many(runnable, workers=int(self.workers)) if runnable else [])
        scores = []
        for program in programs:
            if program is None:
                scores.append(Score(correct=False, prediction="", detail="no code block or no function"))
            else:
                outcome = next(outcomes)
                scores.append(Score(correct=outcome.passed, prediction=program, detail=outcome.summary()))
        return scores
