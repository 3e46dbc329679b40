"""``mkdocs build --strict`` succeeds: every link, anchor and ``::: module`` reference resolves."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.conftest import ROOT

MISSING = [
    m
    for m in ("mkdocs", "material", "mkdocstrings_handlers.python")
    if importlib.util.find_spec(m.split(".")[0]) is None
]


@pytest.mark.skipif(
    bool(MISSING),
    reason=f"the docs toolchain is not installed ({', '.join(MISSING)}): pip install -r requirements-docs.txt",
)
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    for page in (
        "index.html",
        "tutorial/first-policy/index.html",
        "reference/hooks/index.html",
        "reference/errors/index.html",
        "reference/api/core/index.html",
    ):
        assert (site / page).exists(), f"the site has no {page}"
    hooks = (site / "reference/hooks/index.html").read_text(encoding="utf-8")
    assert 'id="select_unmaskstate-prediction"' in hooks
    errors = (site / "reference/errors/index.html").read_text(encoding="utf-8")
    assert 'id="no-progress"' in errors
    api = (site / "reference/api/core/index.html").read_text(encoding="utf-8")
    assert "daedal.core.Canvas.apply" in api, "mkdocstrings rendered no API for daedal.core"
    shutil.rmtree(site, ignore_errors=True)
