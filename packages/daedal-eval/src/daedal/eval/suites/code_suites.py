"""What HumanEval and MBPP share: sandbox settings and concurrent scoring."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from daedal.core.errors import ConfigError
from daedal.eval.scoring.code import CodeTask, run_tests_many
from daedal.eval.scoring.paper_code import PAPER_TIMEOUT, PaperScriptCrash
from daedal.eval.suites.base import PROTOCOLS, Score, Suite

#: Seconds per program in the default protocol.
DEFAULT_TIMEOUT = 10.0
#: Protocols of the code suites: the scoring protocols, and ``"judge"``, another name of
#: ``"default"`` (whose tests run in a trusted judge process).
CODE_PROTOCOLS = (*PROTOCOLS, "judge")

#: Instructions after the problem in both code prompts (reference semantics E4).
CODE_FORMAT = (
    "\n\nFirst, reason about the solution step-by-step. Then, write the code.\nRespond in the following format:\n"
    "<reasoning>\nYour reasoning here\n</reasoning>\n<answer>\n```python\n"
)


def _positive_number(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"`{attribute.name}` must be a positive number, got {value!r}")


def _protocol(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if value not in CODE_PROTOCOLS:
        raise ConfigError(
            f"`{attribute.name}` must be one of {CODE_PROTOCOLS}, got {value!r}: 'paper' extracts, sanitises and runs "
            "exactly as the DAEDAL repository's scripts (one process, 3 s); 'default' (= 'judge') fixes their accidents "
            "and judges the tests in a trusted process"
        )


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
    timeout: Wall-clock seconds per program; None: the protocol's (paper 3 s, as HF
        ``code_eval``; default 10 s).
    memory_mb: Address-space limit per program.
    workers: Programs run at the same time.
    protocol: ``"default"`` (also called ``"judge"``: the default extraction and
        sanitiser, tests in a trusted process, so the program cannot forge its verdict)
        or ``"paper"`` (the official scripts' extraction and sanitiser, one process, as
        they run it).
    unsafe_exec: Where bubblewrap is missing, run code under the weak in-process
        guard instead of refusing (only for code you trust).
    """

    pad_strings: ClassVar[tuple[str, ...]] = ("<|eot_id|>", "<|endoftext|>")

    timeout: float | None = attrs.field(default=None, validator=attrs.validators.optional(_positive_number))
    memory_mb: int = attrs.field(default=2048, validator=_positive_number)
    workers: int = attrs.field(default=2, validator=_positive_number)
    protocol: str = attrs.field(default="default", validator=_protocol)
    unsafe_exec: bool = attrs.field(default=False, converter=_flag)

    @property
    def effective_timeout(self) -> float:
        """Seconds per program: ``timeout``, else the protocol's."""
        if self.timeout is not None:
            return float(self.timeout)
        return PAPER_TIMEOUT if self.protocol == "paper" else DEFAULT_TIMEOUT

    @property
    def execution(self) -> str:
        """How the tests run: ``"paper"`` (one process) or ``"judge"`` (a trusted process)."""
        return "paper" if self.protocol == "paper" else "judge"

    def sandbox(self) -> Any:
        from daedal.eval.sandbox import Limits, Sandbox

        return Sandbox(
            Limits(timeout=self.effective_timeout, memory_mb=int(self.memory_mb)), unsafe_exec=self.unsafe_exec
        )

    def task_and_reason(self, doc: Mapping[str, Any], text: str) -> tuple[CodeTask | None, str]:
        """``(task, reason)``: the program and tests, or None and why the generation is wrong unrun."""
        raise NotImplementedError

    def task(self, doc: Mapping[str, Any], text: str) -> CodeTask | None:
        """The program and tests for a generation, or None when it is wrong without running."""
        return self.task_and_reason(doc, text)[0]

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        described["params"]["timeout"] = self.effective_timeout
        return described

    def program(self, doc: Mapping[str, Any], text: str) -> str | None:
        """The single test program (paper protocol) for a generation, or None."""
        task = self.task(doc, text)
        return None if task is None else task.full

    def score(self, doc: Mapping[str, Any], text: str) -> Score:
        return self.score_many([doc], [text])[0]

    def score_many(self, docs: Sequence[Mapping[str, Any]], texts: Sequence[str]) -> list[Score]:
        if len(docs) != len(texts):
            raise ConfigError(f"`texts` has {len(texts)} entries for {len(docs)} docs: pass one text per doc")
        tasks: list[CodeTask | str] = []
        for doc, text in zip(docs, texts, strict=True):
            try:
                task, reason = self.task_and_reason(doc, text)
                tasks.append(task if task is not None else reason)
            except PaperScriptCrash as crash:
                tasks.append(f"paper script crashes: {crash}")
            except Exception as error:  # one sample's failure is recorded for it, never the run's
                tasks.append(f"scoring error: {type(error).__name__}: {error}")
        runnable = [t for t in tasks if isinstance(t, CodeTask)]
        outcomes = iter(
            run_tests_many(runnable, self.sandbox(), protocol=self.execution, workers=int(self.workers))
            if runnable
            else []
        )
        scores = []
        for task in tasks:
            if isinstance(task, str):
                scores.append(Score(correct=False, prediction="", detail=task))
            else:
                outcome = next(outcomes)
                scores.append(Score(correct=outcome.passed, prediction=task.full, detail=outcome.summary()))
        return scores
