"""HumanEval / MBPP programs exactly as the DAEDAL repository's ``metrics/{humaneval,mbpp}.py``.

Written from reading those scripts (no code taken over); the programs run in
:class:`~daedal.eval.sandbox.Sandbox` with the scripts' 3 s limit (HF ``code_eval``'s
default). The quirks, each pinned by a test in ``tests/eval/test_paper_protocol.py``:

* **Extraction.** HumanEval takes the text after the first ```` ```python\\n```` (the whole
  text when there is none) up to the next ```` ``` ```` — so with a ```` ```py ```` fence the
  code is the prose *before* it. MBPP needs a closed ```` ```python\\n … ``` ```` block
  (unclosed: wrong) and strips it; its entry point is the first line matching
  ``^\\s*def\\s+NAME``.
* **Text clean-up.** Tabs become four spaces, ``\\r\\n``/``\\r`` become ``\\n``, the text is
  stripped.
* **Longest valid code.** Of the first 100 lines, the contiguous span with the most
  non-blank lines that parses (earliest on ties).
* **Kept statements.** Imports (all moved to the top), classes, functions (HumanEval: only
  those containing a ``return``; ``async def`` never), and ``NAME = …`` assignments whose
  *first* target is a plain name. Tuple targets (``A, B = 1, 2``), annotated
  (``X: int = 3``) and augmented assignments are dropped. A name defined twice keeps the
  last definition at the first one's place. Every kept statement is re-emitted with
  :func:`ast.unparse` (comments are lost).
* **Reachability.** From the entry point through the names each definition uses, where a
  name used only as the base of an attribute (``SPLIT.split``, ``Solution().f``) does not
  count. HumanEval drops prompt helpers only the tests call (HumanEval/50's
  ``encode_shift``: even the canonical solution fails). MBPP keeps every definition when the
  entry point is not among them.
* **Tests.** HumanEval: ``test + "\\ncheck(entry_point)"``; MBPP: the three asserts joined
  by newlines, without ``test_setup_code``.
* **Crashes.** A snippet on which :func:`ast.parse` raises something other than
  ``SyntaxError``/``MemoryError`` stops the script: a very long operator chain (a
  5,000-term sum) raises ``RecursionError`` (some older Pythons also raise ``ValueError`` on a
  null byte, where 3.11.7 raises ``SyntaxError``). The sample is scored incorrect with that reason (:class:`PaperScriptCrash`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

from daedal.eval.scoring.code import CodeTask
from daedal.eval.scoring.paper_math import PaperScriptCrash

__all__ = [
    "PaperScriptCrash",
    "humaneval_code",
    "humaneval_program",
    "humaneval_task",
    "longest_valid_code",
    "mbpp_code",
    "mbpp_entry_point",
    "mbpp_program",
    "mbpp_task",
    "sanitize",
]

#: Seconds per program in the paper's scoring (HF ``code_eval`` default).
PAPER_TIMEOUT = 3.0
_MBPP_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
_MBPP_DEF = re.compile(r"^\s*def\s+([a-zA-Z_]\w*)", re.MULTILINE)


def _parses(snippet: str) -> bool:
    try:
        ast.parse(snippet)
    except (SyntaxError, MemoryError):
        return False
    except (ValueError, RecursionError) as err:
        raise PaperScriptCrash(
            f"{type(err).__name__} in the script's syntax check ({err}); the script stops here"
        ) from err
    return True


def _refine(text: str) -> str:
    return text.replace("\t", "    ").replace("\r\n", "\n").replace("\r", "\n").strip() + "\n"


def longest_valid_code(text: str) -> str:
    """The span of the first 100 lines with the most non-blank lines that parses (earliest wins).

    Spans that cannot beat the best found so far are not parsed, which leaves the
    result of the script's exhaustive search unchanged.
    """
    lines = text.splitlines()[:100]
    filled = [1 if line.strip() else 0 for line in lines]
    suffix = [0] * (len(lines) + 1)
    for k in range(len(lines) - 1, -1, -1):
        suffix[k] = suffix[k + 1] + filled[k]
    best, best_snippet = 0, ""
    for i in range(len(lines)):
        if suffix[i] <= best:
            break  # no later start can hold more non-blank lines
        count = 0
        for j in range(i, len(lines)):
            count += filled[j]
            if count > best:
                snippet = "\n".join(lines[i : j + 1])
                if _parses(snippet):
                    best, best_snippet = count, snippet
    return best_snippet


def _uses(node: ast.AST) -> set[str]:
    """Names under ``node``, not looking inside attribute accesses (as the script's get_deps)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        for child in ast.iter_child_nodes(stack.pop()):
            if isinstance(child, ast.Name):
                found.add(child.id)
            elif not isinstance(child, ast.Attribute):
                stack.append(child)
    return found


def sanitize(text: str, entry_point: str | None, *, require_return: bool) -> str:
    """The script's ``sanitize``: HumanEval with ``require_return=True``, MBPP with False.

    Raises:
        PaperScriptCrash: Where the script raises.
    """
    code = longest_valid_code(_refine(text))
    if not code:
        return ""
    tree = ast.parse(code)
    imports: list[ast.stmt] = []
    definitions: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(node)
        elif isinstance(node, ast.ClassDef):
            definitions[node.name] = node
        elif isinstance(node, ast.FunctionDef):
            if not require_return or any(isinstance(n, ast.Return) for n in ast.walk(node)):
                definitions[node.name] = node
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            definitions[node.targets[0].id] = node
    # HumanEval always follows the entry point; MBPP only when it is defined.
    if entry_point and (require_return or entry_point in definitions):
        deps = {name: _uses(node) for name, node in definitions.items()}
        reachable: set[str] = set()
        todo = [entry_point]
        while todo:
            name = todo.pop()
            if name not in reachable:
                reachable.add(name)
                todo.extend(deps.get(name, set()) - reachable)
    else:
        reachable = set(definitions)
    try:
        parts = [ast.unparse(n) for n in imports]
        parts += [ast.unparse(n) for name, n in definitions.items() if name in reachable]
    except RecursionError as err:
        raise PaperScriptCrash(f"RecursionError in ast.unparse ({err}); the script stops here") from err
    return "\n".join(parts)


def humaneval_code(text: str) -> str:
    """After the first ```` ```python\\n```` (else from the start) up to the next ```` ``` ````."""
    return text.split("```python\n", 1)[-1].split("```")[0]


def humaneval_task(doc: Mapping[str, Any], text: str) -> CodeTask:
    """The sanitised program and the tests the paper's HumanEval scoring runs for one generation."""
    sanitized = sanitize(doc["prompt"] + "\n" + humaneval_code(text), doc["entry_point"], require_return=True)
    return CodeTask(program=sanitized, tests=doc["test"] + "\ncheck(" + doc["entry_point"] + ")")


def humaneval_program(doc: Mapping[str, Any], text: str) -> str:
    """The single program the paper's HumanEval scoring runs (``code_eval``: program, newline, tests)."""
    task = humaneval_task(doc, text)
    return task.program + "\n" + task.tests


def mbpp_code(text: str) -> str:
    """The stripped body of the first closed ```` ```python\\n … ``` ```` block, else ``""``."""
    match = _MBPP_BLOCK.search(text)
    return match.group(1).strip() if match else ""


def mbpp_entry_point(code: str) -> str | None:
    match = _MBPP_DEF.search(code) if code else None
    return match.group(1) if match else None


def mbpp_task(doc: Mapping[str, Any], text: str) -> tuple[CodeTask | None, str]:
    """``(task, reason)``: what the paper's MBPP scoring runs, or None and why the sample is wrong."""
    code = mbpp_code(text)
    if not code:
        return None, "no closed ```python block (paper: failed extraction)"
    entry = mbpp_entry_point(code)
    if entry is None:
        return None, "no def in the block (paper: failed entry point)"
    return CodeTask(program=sanitize(code, entry, require_return=False), tests="\n".join(doc["test_list"][:3])), ""


def mbpp_program(doc: Mapping[str, Any], text: str) -> tuple[str | None, str]:
    """``(program, reason)``: the single program the paper's MBPP scoring runs, or None and why."""
    task, reason = mbpp_task(doc, text)
    return (None, reason) if task is None else (task.program + "\n" + task.tests, "")
