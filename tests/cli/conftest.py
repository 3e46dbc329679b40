"""Helpers for the CLI tests: run ``daedal`` in-process or as the installed console script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def cli(capsys):
    """Call ``daedal.models.cli.main`` in-process; returns (exit code, stdout, stderr)."""
    from daedal.models.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def daedal_command() -> list[str]:
    """The installed console script (falls back to ``python -m daedal.models.cli``)."""
    script = Path(sys.executable).parent / "daedal"
    if script.exists():
        return [str(script)]
    found = shutil.which("daedal")
    return [found] if found else [sys.executable, "-m", "daedal.models.cli"]


@pytest.fixture
def console_script():
    def run(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
        return subprocess.run([*daedal_command(), *argv], capture_output=True, text=True, timeout=timeout, env=env)

    return run
