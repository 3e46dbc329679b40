"""Run the code examples of the docs, so that no page shows code that does not work.

Rules for authors of docs pages:

* Every ```python block runs, in page order, in one namespace per page (a page reads like
  one session: later blocks may use what earlier ones defined). Use ``assert`` to state
  what the reader should see.
* A block with ``title="some/file.py"`` (or any other titled block, e.g. a
  ``pyproject.toml``) is written to that path in a scratch directory, which is on
  ``sys.path``, instead of being run; a titled ``test_*.py`` file is then run with pytest
  and must pass.
* A block preceded by ``<!-- skip: reason -->`` is shown but not run: only for code that
  needs a real checkpoint, a GPU or the network.
* Examples must run offline on the CPU in seconds: use ``daedal.core.testing.FakeAdapter``
  or the bundled tiny model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.docs.conftest import DOCS, ROOT, Block, blocks, pages

PYTHON = {"python", "py", "python3"}
SECONDS_PER_PAGE = 120  # generous: CI machines are shared; a page should take seconds


#: Package READMEs whose examples run too (they are what PyPI shows).
READMES = [ROOT / "packages" / name / "README.md" for name in ("daedal-core",)]


def _runnable_pages() -> list[Path]:
    return [p for p in [*pages(), *READMES] if any(b.lang in PYTHON and not b.skip for b in blocks(p))]


def test_the_docs_have_runnable_examples() -> None:
    runnable = {p.relative_to(DOCS).as_posix() for p in _runnable_pages() if p.is_relative_to(DOCS)}
    for page in ("index.md", "tutorial/quickstart.md", "tutorial/first-policy.md", "reference/hooks.md"):
        assert page in runnable, f"{page} has no runnable Python example"


def test_skips_give_a_reason() -> None:
    for page in pages():
        for block in blocks(page):
            if block.skip is not None:
                assert block.skip != "marked skip" and len(block.skip) > 8, (
                    f"{block.where}: say why the block cannot run, e.g. <!-- skip: needs the 8B checkpoint -->"
                )


def _run_block(block: Block, namespace: dict, scratch: Path) -> None:
    code = compile(block.code, f"{block.where}", "exec")
    try:
        exec(code, namespace)
    except Exception as err:  # re-raise with the page and line in front
        raise AssertionError(f"the example at {block.where} failed: {type(err).__name__}: {err}") from err


@pytest.mark.parametrize("page", _runnable_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    modules_before = set(sys.modules)
    namespace: dict = {"__name__": "__docs__"}
    written: list[Path] = []
    started = time.perf_counter()
    try:
        for block in blocks(page):
            if block.skip:
                continue
            if block.title:
                target = tmp_path / block.title
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(block.code, encoding="utf-8")
                written.append(target)
            elif block.lang in PYTHON:
                _run_block(block, namespace, tmp_path)
        tests = [p for p in written if p.name.startswith("test_") and p.suffix == ".py"]
        if tests:
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")]),
            }
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, tests)],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, (
                f"the tests written by {page.name} failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
            )
            assert " passed" in done.stdout
    finally:
        for name in set(sys.modules) - modules_before:  # modules the page wrote must not leak into others
            file = getattr(sys.modules[name], "__file__", None) or ""
            if file.startswith(str(tmp_path)):
                del sys.modules[name]
    elapsed = time.perf_counter() - started
    assert elapsed < SECONDS_PER_PAGE, (
        f"{page.name}'s examples took {elapsed:.0f} s; keep them to seconds (small gen_length)"
    )
