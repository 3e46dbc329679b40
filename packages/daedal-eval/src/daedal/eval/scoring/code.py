"""Code extraction, sanitisation and test programs for HumanEval and MBPP.

The evaluation scripts of the paper (reference semantics E5) take the code
out of the first ```` ```python ```` fence, *sanitise* it (keep the longest run of lines
that parses, then only imports and the definitions reachable from the entry point) and
run it against the benchmark's tests. The sanitiser here is written on Python's
:mod:`ast`; the programs it produces run in :class:`~daedal.eval.sandbox.Sandbox`.

Execution (:func:`run_tests`) keeps the program and its tests apart: by default the
tests run in a trusted judge process and only data crosses from the program's process
(``protocol="judge"``); ``protocol="paper"`` runs them in one process, as the official
scripts do.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from daedal.core.errors import ConfigError

if TYPE_CHECKING:
    from daedal.eval.sandbox import Execution, Sandbox

__all__ = [
    "PROTOCOLS",
    "CodeTask",
    "extract_code_block",
    "first_def_name",
    "humaneval_program",
    "humaneval_task",
    "longest_parsable_span",
    "mbpp_program",
    "mbpp_task",
    "run_tests",
    "run_tests_many",
    "sanitize",
]

#: How a program and its tests are run: ``"judge"`` (tests in a trusted process, the
#: default) or ``"paper"`` (one process, as the official scripts).
PROTOCOLS: tuple[str, ...] = ("judge", "paper")


@attrs.frozen
class CodeTask:
    """A program to test and the tests that decide it.

    Attributes:
        program: The candidate's (sanitised) code: definitions and imports.
        tests: The benchmark's tests (trusted), ending with the call that runs them.
        setup: Code both sides need before the tests (MBPP's ``test_setup_code``).
    """

    program: str
    tests: str
    setup: str = ""

    @property
    def full(self) -> str:
        """The single program of the paper's protocol: code, setup, tests."""
        setup = f"{self.setup}\n" if self.setup else ""
        return f"{self.program}\n\n{setup}{self.tests}"


def run_tests(task: CodeTask, sandbox: Sandbox, *, protocol: Literal["judge", "paper"] = "judge") -> Execution:
    """Run a program against its tests in ``sandbox`` and return the verdict record.

    Args:
        task: The program and its tests.
        sandbox: Where to run them.
        protocol: ``"judge"``: the tests run in a trusted process, the program's
            process only answers calls with data, so the program cannot forge
            "passed". ``"paper"``: one process, passed when it runs to its end (the
            official scripts' protocol; forgeable by a hostile program).

    Returns:
        The :class:`~daedal.eval.sandbox.Execution`; never raises for what the program does.
    """
    return run_tests_many([task], sandbox, protocol=protocol)[0]


def run_tests_many(
    tasks: Sequence[CodeTask],
    sandbox: Sandbox,
    *,
    protocol: Literal["judge", "paper"] = "judge",
    workers: int = 1,
) -> list[Execution]:
    """:func:`run_tests` for several tasks, ``workers`` at a time, results in order."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"`protocol` must be one of {PROTOCOLS}, got {protocol!r}")
    if protocol == "paper":
        return sandbox.run_many([t.full for t in tasks], workers=workers)
    pairs = [
        ((f"{t.program}\n\n{t.setup}\n" if t.setup else t.program), (f"{t.setup}\n{t.tests}" if t.setup else t.tests))
        for t in tasks
    ]
    return sandbox.check_many(pairs, workers=workers)


_FENCE = "```python\n"
_DEF = re.compile(r"^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)


def extract_code_block(text: str) -> str | None:
    """The code of the first ```` ```python ```` fence: after ``"```python\\n"`` up to the next ```` ``` ````.

    An unclosed fence runs to the end of the text. Returns None when there is no fence.
    """
    start = text.find(_FENCE)
    if start < 0:
        return None
    body = text[start + len(_FENCE) :]
    end = body.find("```")
    return body if end < 0 else body[:end]


def first_def_name(code: str) -> str | None:
    """Name of the first ``def`` in ``code`` (MBPP's entry point), or None."""
    match = _DEF.search(code)
    return match.group(1) if match else None


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def longest_parsable_span(lines: Sequence[str]) -> list[str]:
    """The longest contiguous run of ``lines`` that parses as Python (earliest on ties).

    Runs that start with an indented line can never parse on their own, so only
    unindented (or blank) starting lines are tried; this keeps the search quick for the
    common case where everything parses.
    """
    n = len(lines)
    if _parses("\n".join(lines)):
        return list(lines)
    starts = [i for i, line in enumerate(lines) if not line[:1].isspace()]
    for size in range(n - 1, 0, -1):
        for i in starts:
            if i + size > n:
                break
            if _parses("\n".join(lines[i : i + size])):
                return list(lines[i : i + size])
    return []


def _has_return(node: ast.AST) -> bool:
    return any(isinstance(child, ast.Return) for child in ast.walk(node))


def _defined_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    names: list[str] = []
    for target in targets:
        names.extend(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _used_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def sanitize(
    code: str,
    entry_point: str | None,
    *,
    require_return: bool = True,
    max_lines: int = 100,
    roots: Sequence[str] = (),
) -> str:
    """Reduce model-written code to what a test of ``entry_point`` needs.

    Steps: keep the first ``max_lines`` lines; keep the longest contiguous run of them
    that parses; of its top-level statements keep imports, classes, assignments and
    functions (those without any ``return`` are dropped when ``require_return``, as for
    HumanEval); finally keep only definitions reachable from ``entry_point`` through the
    names they use. Imports are always kept. Statements keep their original order.

    Args:
        code: The program text.
        entry_point: The function the tests call; None keeps every kept definition.
        require_return: Drop functions that never ``return`` (HumanEval: True, MBPP: False).
        max_lines: Lines of ``code`` considered at all.
        roots: More names whose definitions (and what they use) are kept, e.g. the
            helpers the tests call.

    Returns:
        The sanitised source (possibly empty).
    """
    lines = code.splitlines()[:max_lines]
    span = "\n".join(longest_parsable_span(lines))
    if not span.strip():
        return ""
    tree = ast.parse(span)
    span_lines = span.splitlines()
    kept: list[tuple[ast.stmt, list[str]]] = []  # (node, names it defines); [] for imports
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            kept.append((node, []))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not require_return or _has_return(node):
                kept.append((node, [node.name]))
        elif isinstance(node, (ast.ClassDef, ast.Assign, ast.AnnAssign, ast.AugAssign)):
            names = _defined_names(node)
            if names:
                kept.append((node, names))
    if entry_point is not None:
        uses: dict[str, set[str]] = {}
        for node, names in kept:
            for name in names:
                uses.setdefault(name, set()).update(_used_names(node))
        reachable: set[str] = set()
        todo = [entry_point, *roots]
        while todo:
            name = todo.pop()
            if name in reachable or name not in uses:
                continue
            reachable.add(name)
            todo.extend(uses[name] - reachable)
        kept = [(node, names) for node, names in kept if not names or set(names) & reachable]
    chunks = []
    for node, _ in kept:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        last = node.end_lineno or node.lineno
        chunks.append("\n".join(span_lines[first - 1 : last]))
    return "\n".join(chunks)


def humaneval_program(doc: Mapping[str, Any], text: str, *, max_lines: int = 100, test_roots: bool = True) -> str:
    """The single test program (paper protocol) of :func:`humaneval_task`."""
    return humaneval_task(doc, text, max_lines=max_lines, test_roots=test_roots).full


def humaneval_task(doc: Mapping[str, Any], text: str, *, max_lines: int = 100, test_roots: bool = True) -> CodeTask:
    """The program and tests for one HumanEval generation.

    Code is the first ```` ```python ```` block (the whole text when there is none); the
    program is ``prompt + "\\n" + code``, sanitised for ``entry_point``, followed by the
    problem's ``test`` and ``check(entry_point)``.

    Args:
        doc: The problem (``prompt``, ``test``, ``entry_point``).
        text: The raw generation.
        max_lines: Lines of the program the sanitiser considers.
        test_roots: Also keep definitions that the *tests* use. The paper's sanitiser
            keeps only what ``entry_point`` reaches, which drops helpers defined in the
            prompt and called only by the tests (HumanEval/50's ``encode_shift``), so even
            the canonical solution fails there; False reproduces that exactly.
    """
    for key in ("prompt", "test", "entry_point"):
        if key not in doc:
            raise ValueError(f"HumanEval `doc` lacks the field {key!r}; got fields {sorted(doc)}")
    code = extract_code_block(text)
    if code is None:
        code = text
    entry = doc["entry_point"]
    roots = _test_roots(doc["test"]) if test_roots else []
    program = sanitize(doc["prompt"] + "\n" + code, entry, require_return=True, max_lines=max_lines, roots=roots)
    return CodeTask(program=program, tests=f"{doc['test']}\n\ncheck({entry})\n")


def _test_roots(test_source: str) -> list[str]:
    return sorted(_used_names(ast.parse(test_source))) if _parses(test_source) else []


def mbpp_program(doc: Mapping[str, Any], text: str, *, max_lines: int = 100, test_roots: bool = True) -> str | None:
    """The single test program (paper protocol) of :func:`mbpp_task`, or None."""
    task = mbpp_task(doc, text, max_lines=max_lines, test_roots=test_roots)
    return None if task is None else task.full


def mbpp_task(doc: Mapping[str, Any], text: str, *, max_lines: int = 100, test_roots: bool = True) -> CodeTask | None:
    """The program and tests for one MBPP generation, or None when it is wrong without running.

    None when there is no ```` ```python ```` block or the block has no ``def``. The program
    is the sanitised block (functions kept even without ``return``), the problem's
    ``test_setup_code`` and its three asserts.

    Args:
        doc: The problem (``test_list``, optional ``test_setup_code``).
        text: The raw generation.
        max_lines: Lines of the code the sanitiser considers.
        test_roots: Also keep the definitions the asserts call. The paper's sanitiser
            keeps only what the *first* ``def`` reaches, so code that defines a helper
            before the asked-for function fails; False reproduces that exactly.
    """
    if "test_list" not in doc:
        raise ValueError(f"MBPP `doc` lacks the field 'test_list'; got fields {sorted(doc)}")
    code = extract_code_block(text)
    if code is None:
        return None
    entry = first_def_name(code)
    if entry is None:
        return None
    setup = doc.get("test_setup_code") or ""
    tests = "\n".join(doc["test_list"])
    roots = _test_roots(tests) if test_roots else []
    program = sanitize(code, entry, require_return=False, max_lines=max_lines, roots=roots)
    return CodeTask(program=program, tests=f"{tests}\n", setup=setup)
