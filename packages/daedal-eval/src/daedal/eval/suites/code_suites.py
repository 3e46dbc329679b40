"""What HumanEval and MBPP share: sandbox settings and concurrent scoring."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from daedal.core.errors import ConfigError
from daedal.eval.scoring.paper_code import PAPER_TIMEOUT, PaperScriptCrash
from daedal.eval.suites.base import Score, Suite

#: Seconds per program in the default protocol.
DEFAULT_TIMEOUT = 10.0

#: Instructions after the problem in both code prompts (paper-results §4).
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
        timeout: Wall-clock seconds per program; None: the protocol's (paper 3 s, as HF
            ``code_eval``; default 10 s).
        memory_mb: Address-space limit per program.
        workers: Programs run at the same time.
    """

    pad_strings: ClassVar[tuple[str, ...]] = ("<|eot_id|>", "<|endoftext|>")

    timeout: float | None = attrs.field(default=None, validator=attrs.validators.optional(_positive_number))
    memory_mb: int = attrs.field(default=2048, validator=_positive_number)
    workers: int = attrs.field(default=2, validator=_positive_number)

    @property
    def effective_timeout(self) -> float:
        """Seconds per program: ``timeout``, else the protocol's."""
        if self.timeout is not None:
            return float(self.timeout)
        return PAPER_TIMEOUT if self.protocol == "paper" else DEFAULT_TIMEOUT

    def sandbox(self) -> Any:
        from daedal.eval.sandbox import Limits, Sandbox

        return Sandbox(Limits(timeout=self.effective_timeout, memory_mb=int(self.memory_mb)))

    def program(self, doc: Mapping[str, Any], text: str) -> str | None:
        """The test program for a generation, or None when it is wrong without running."""
        return self.program_and_reason(doc, text)[0]

    def program_and_reason(self, doc: Mapping[str, Any], text: str) -> tuple[str | None, str]:
        """``(program, reason)``: the program to run, or None and why the generation is wrong unrun."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        described["params"]["timeout"] = self.effective_timeout
        return described

    def score(self, doc: Mapping[str, Any], text: str) -> Score:
        return self.score_many([doc], [text])[0]

    def score_many(self, docs: Sequence[Mapping[str, Any]], texts: Sequence[str]) -> list[Score]:
        if len(docs) != len(texts):
            raise ConfigError(f"`texts` has {len(texts)} entries for {len(docs)} docs: pass one text per doc")
        built = [self._guarded_program(d, t) for d, t in zip(docs, texts, strict=True)]
        runnable = [p for p, _ in built if p is not None]
        outcomes = iter(self.sandbox().run_many(runnable, workers=int(self.workers)) if runnable else [])
        scores = []
        for program, reason in built:
            if program is None:
                scores.append(Score(correct=False, prediction="", detail=reason))
            else:
                outcome = next(outcomes)
                scores.append(Score(correct=outcome.passed, prediction=program, detail=outcome.summary()))
        return scores

    def _guarded_program(self, doc: Mapping[str, Any], text: str) -> tuple[str | None, str]:
        try:
            return self.program_and_reason(doc, text)
        except PaperScriptCrash as crash:
            return None, f"paper script crashes: {crash}"
