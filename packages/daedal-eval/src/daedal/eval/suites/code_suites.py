"""What HumanEval and MBPP share: sandbox settings and concurrent scoring."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from daedal.core.errors import ConfigError
from daedal.eval.scoring.code import PROTOCOLS, CodeTask, run_tests_many
from daedal.eval.suites.base import Score, Suite

#: Instructions after the problem in both code prompts (reference semantics E4).
CODE_FORMAT = (
    "\n\nFirst, reason about the solution step-by-step. Then, write the code.\nRespond in the following format:\n"
    "<reasoning>\nYour reasoning here\n</reasoning>\n<answer>\n```python\n"
)


def _positive_number(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"`{attribute.name}` must be a positive number, got {value!r}")


def _protocol(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if value not in PROTOCOLS:
        raise ConfigError(f"`{attribute.name}` must be one of {PROTOCOLS}, got {value!r}")


def _flag(value: object) -> bool:
    """A boolean parameter, also from the command line's ``key=value`` strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.lower() in ("1", "true", "yes", "on")
    raise ConfigError(f"`unsafe_exec` must be true or false, got {value!r}")


@attrs.frozen(kw_only=True)
class _CodeSuite(Suite):
    """Attributes (beyond :class:`Suite`'s):
        timeout: Wall-clock seconds per program.
        memory_mb: Address-space limit per program.
        workers: Programs run at the same time.
        protocol: ``"judge"`` (tests in a trusted process; the program cannot forge
            its verdict) or ``"paper"`` (one process, as the official scripts).
        unsafe_exec: Where bubblewrap is missing, run code under the weak in-process
            guard instead of refusing (only for code you trust).
    """

    pad_strings: ClassVar[tuple[str, ...]] = ("<|eot_id|>", "<|endoftext|>")

    timeout: float = attrs.field(default=10.0, validator=_positive_number)
    memory_mb: int = attrs.field(default=2048, validator=_positive_number)
    workers: int = attrs.field(default=2, validator=_positive_number)
    protocol: str = attrs.field(default="judge", validator=_protocol)
    unsafe_exec: bool = attrs.field(default=False, converter=_flag)

    def sandbox(self) -> Any:
        from daedal.eval.sandbox import Limits, Sandbox

        return Sandbox(Limits(timeout=float(self.timeout), memory_mb=int(self.memory_mb)), unsafe_exec=self.unsafe_exec)

    def task(self, doc: Mapping[str, Any], text: str) -> CodeTask | None:
        """The program and tests for a generation, or None when it is wrong without running."""
        raise NotImplementedError

    def program(self, doc: Mapping[str, Any], text: str) -> str | None:
        """The single test program (paper protocol) for a generation, or None."""
        task = self.task(doc, text)
        return None if task is None else task.full

    def score(self, doc: Mapping[str, Any], text: str) -> Score:
        return self.score_many([doc], [text])[0]

    def score_many(self, docs: Sequence[Mapping[str, Any]], texts: Sequence[str]) -> list[Score]:
        if len(docs) != len(texts):
            raise ConfigError(f"`texts` has {len(texts)} entries for {len(docs)} docs: pass one text per doc")
        tasks: list[CodeTask | str | None] = []
        for doc, text in zip(docs, texts, strict=True):
            try:
                tasks.append(self.task(doc, text))
            except Exception as error:  # one sample's failure is recorded for it, never the run's
                tasks.append(f"scoring error: {type(error).__name__}: {error}")
        runnable = [t for t in tasks if isinstance(t, CodeTask)]
        outcomes = iter(
            run_tests_many(runnable, self.sandbox(), protocol=self.protocol, workers=int(self.workers)) if runnable else []
        )
        scores = []
        for task in tasks:
            if task is None:
                scores.append(Score(correct=False, prediction="", detail="no code block or no function"))
            elif isinstance(task, str):
                scores.append(Score(correct=False, prediction="", detail=task))
            else:
                outcome = next(outcomes)
                scores.append(Score(correct=outcome.passed, prediction=task.full, detail=outcome.summary()))
        return scores
