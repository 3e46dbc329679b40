"""Outputs shown in the docs are outputs of running the examples.

Two forms are checked (and can be rewritten from a real run with
``python -m tests.docs.outputs --update [PAGE ...]``):

* a ``console`` block: lines starting with ``$ daedal ...`` are commands, the lines after
  each command are what it prints (stdout and stderr, in the order a terminal shows them)::

      ```console
      $ daedal generate "reverse: a b c"
      c b a
      ```

* a ``text`` block right after a comment ``<!-- output -->`` is what the block before it
  prints: a ``python`` block (the page's python blocks run in order in one namespace, as
  in ``test_examples``), or a ``bash`` block, whose ``daedal ...`` commands (lines, or
  parts joined by ``&&``) run and the rest (installs, ``cd``) is taken as done.

A line ``...`` in an expected output stands for any number of lines. Commands run
in-process, in a scratch directory, with the terminal's live view off.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import sys
from pathlib import Path

import attrs

from tests.docs.conftest import DOCS, ROOT, Block, blocks, pages

OUTPUT_MARK = re.compile(r"<!--\s*output\s*-->")
PYTHON = {"python", "py", "python3"}


@attrs.frozen
class Shown:
    """One shown output: where its lines are in the page, what it claims, what produced it."""

    page: Path
    first: int  # 0-based index of the output's first line in the page
    count: int  # number of output lines
    expected: tuple[str, ...]
    source: str  # the command or "python block at line N"


def _is_output(page_lines: list[str], block: Block) -> bool:
    j = block.line - 2
    while j >= 0 and not page_lines[j].strip():
        j -= 1
    return j >= 0 and bool(OUTPUT_MARK.search(page_lines[j]))


def matches(expected: tuple[str, ...] | list[str], actual: list[str]) -> bool:
    """Line-by-line equality (trailing spaces ignored); a ``...`` line matches any run of lines."""
    exp = [e.rstrip() for e in expected]
    act = [a.rstrip() for a in actual]
    if "..." not in exp:
        return exp == act
    head = exp[: exp.index("...")]
    tail = exp[exp.index("...") + 1 :]
    if act[: len(head)] != head:
        return False
    rest = act[len(head) :]
    return any(matches(tail, rest[k:]) for k in range(len(rest) + 1))


def _run_daedal(argv: list[str]) -> list[str]:
    from daedal.models.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        main(argv)
    return buffer.getvalue().splitlines()


def has_outputs(page: Path) -> bool:
    lines = page.read_text(encoding="utf-8").splitlines()
    return any(b.lang == "console" or (b.lang == "text" and _is_output(lines, b)) for b in blocks(page))


def run_page(page: Path, scratch: Path) -> list[tuple[Shown, list[str]]]:
    """Run a page's examples in ``scratch``; (shown output, actual output) for each shown output."""
    lines = page.read_text(encoding="utf-8").splitlines()
    out: list[tuple[Shown, list[str]]] = []
    namespace: dict = {"__name__": "__docs__"}
    last_python: list[str] | None = None
    last_bash: list[str] = []
    last_where = ""
    old_cwd = os.getcwd()
    os.chdir(scratch)
    sys.path.insert(0, str(scratch))
    try:
        for block in blocks(page):
            if block.lang in PYTHON and not block.skip and not block.title:
                buffer = io.StringIO()
                with contextlib.redirect_stdout(buffer):
                    exec(compile(block.code, block.where, "exec"), namespace)
                last_python, last_where, last_bash = buffer.getvalue().splitlines(), block.where, []
            elif block.lang in ("bash", "sh") and not block.skip:
                # run only when an output block follows (a bash block may show an 8B command)
                last_bash = [c.strip() for line in block.code.splitlines() for c in line.split("&&")]
                last_python, last_where = None, block.where
            elif block.lang == "text" and _is_output(lines, block):
                if last_python is None and last_bash:
                    last_python = []
                    for command in last_bash:
                        if command.startswith("daedal "):
                            last_python += _run_daedal(shlex.split(command, comments=True)[1:])
                if last_python is None:
                    raise AssertionError(f"{block.where}: an output block must follow a python or bash block")
                body = [] if block.code == "\n" else block.code[:-1].split("\n")
                shown = Shown(page, block.line, len(body), tuple(body), f"the block at {last_where}")
                out.append((shown, last_python))
                last_python, last_bash = None, []
            elif block.lang == "console" and not block.skip:
                body = block.code.splitlines()
                i = 0
                while i < len(body):
                    if not body[i].startswith("$ "):
                        raise AssertionError(f"{block.where}: a console block starts each command with '$ '")
                    command = body[i][2:]
                    j = i + 1
                    while j < len(body) and not body[j].startswith("$ "):
                        j += 1
                    argv = shlex.split(command)
                    if argv[0] != "daedal":
                        raise AssertionError(f"{block.where}: only 'daedal' commands can be checked, not {command!r}")
                    shown = Shown(page, block.line + i + 1, j - i - 1, tuple(body[i + 1 : j]), command)
                    out.append((shown, _run_daedal(argv[1:])))
                    i = j
    finally:
        os.chdir(old_cwd)
        sys.path.remove(str(scratch))
    return out


def update(page: Path, results: list[tuple[Shown, list[str]]]) -> int:
    """Rewrite the page's shown outputs with the actual ones; returns how many changed."""
    lines = page.read_text(encoding="utf-8").splitlines()
    changed = 0
    for shown, actual in sorted(results, key=lambda r: -r[0].first):
        if matches(shown.expected, actual):
            continue
        lines[shown.first : shown.first + shown.count] = [a.rstrip() for a in actual]
        changed += 1
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return changed


def main(argv: list[str]) -> int:
    import tempfile

    if argv[:1] != ["--update"]:
        print("usage: python -m tests.docs.outputs --update [PAGE ...]")
        return 2
    targets = [Path(p).resolve() for p in argv[1:]] or [p for p in [*pages(), ROOT / "README.md"] if has_outputs(p)]
    for page in targets:
        with tempfile.TemporaryDirectory() as tmp:
            n = update(page, run_page(page, Path(tmp)))
        print(f"{page.relative_to(ROOT)}: {n} output(s) rewritten")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    raise SystemExit(main(sys.argv[1:]))


__all__ = ["DOCS", "Shown", "has_outputs", "matches", "run_page", "update"]
