"""What the sandbox tests share: whether bubblewrap works here, and what to do if not."""

from __future__ import annotations

import os

import pytest

from daedal.eval.isolation import INSTALL_HINT, bwrap_path, bwrap_works


def bwrap_problem() -> str | None:
    """Why the isolated sandbox cannot run here, or None when it can."""
    exe = bwrap_path()
    if exe is None:
        return "bubblewrap (bwrap) is not installed"
    works, why = bwrap_works(exe)
    return None if works else f"bubblewrap cannot build a sandbox here: {why}"


def need_bwrap() -> None:
    """Skip a test that needs bubblewrap where it is missing; fail instead under CI.

    ``.ci/run`` installs bubblewrap and sets ``DAEDAL_REQUIRE_BWRAP=1``, so that the
    containment tests can never pass there by being skipped.
    """
    problem = bwrap_problem()
    if problem is None:
        return
    message = f"{problem}: install it ({INSTALL_HINT}) to run the containment tests"
    if os.environ.get("DAEDAL_REQUIRE_BWRAP") == "1":
        pytest.fail(message)
    pytest.skip(message)
