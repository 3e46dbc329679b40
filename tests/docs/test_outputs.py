"""Every output the docs show is what running the example prints (see tests/docs/outputs.py)."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from tests.docs.conftest import DOCS, ROOT, blocks, pages
from tests.docs.outputs import PYTHON, has_outputs, matches, run_page

PAGES_WITH_OUTPUT = [p for p in [*pages(), ROOT / "README.md"] if has_outputs(p)]


def test_the_first_pages_show_real_output() -> None:
    shown = {p.relative_to(ROOT).as_posix() for p in PAGES_WITH_OUTPUT}
    for page in (
        "README.md",
        "docs/index.md",
        "docs/tutorial/quickstart.md",
        "docs/reference/cli.md",
        "docs/how-to/observe-a-run.md",
    ):
        assert page in shown, f"{page} shows no checked output"


@pytest.mark.parametrize("page", PAGES_WITH_OUTPUT, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_shown_output_is_the_real_output(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COLUMNS", "100")
    wrong = []
    for shown, actual in run_page(page, tmp_path):
        if not matches(shown.expected, actual):
            diff = "\n".join(difflib.unified_diff(list(shown.expected), actual, "shown", "printed", lineterm=""))
            wrong.append(f"{page.relative_to(ROOT)}:{shown.first + 1} ({shown.source}):\n{diff}")
    assert not wrong, (
        "\n\n".join(wrong) + f"\n\nrerun the examples into the page with: python -m tests.docs.outputs "
        f"--update {page.relative_to(ROOT)}"
    )


@pytest.mark.parametrize("page", [DOCS / "tutorial" / "quickstart.md", DOCS / "index.md"], ids=lambda p: p.name)
def test_each_python_block_runs_on_its_own(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader copies one block, not the page: each block runs in a fresh namespace."""
    monkeypatch.chdir(tmp_path)
    for block in blocks(page):
        if block.lang in PYTHON and not block.skip and not block.title:
            try:
                exec(compile(block.code, block.where, "exec"), {"__name__": "__docs__"})
            except Exception as err:
                raise AssertionError(f"{block.where} does not run on its own: {type(err).__name__}: {err}") from err


def test_output_matching() -> None:
    assert matches(["a", "b"], ["a", "b  "])
    assert not matches(["a", "b"], ["a", "c"])
    assert matches(["a", "...", "z"], ["a", "b", "c", "z"]) and matches(["a", "...", "z"], ["a", "z"])
    assert not matches(["a", "...", "z"], ["a", "b"])
