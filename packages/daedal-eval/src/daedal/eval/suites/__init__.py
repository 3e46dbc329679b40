"""Benchmark suites, discovered through the ``daedal.suites`` entry-point group.

Each module is imported only when its suite is asked for, so listing suites is cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["available_suites", "load_suite"]


def available_suites() -> list[str]:
    """Names of the installed suites (nothing is imported)."""
    from daedal.core import registry

    return list(registry.available("suites"))


def load_suite(name: str, **params: Any) -> Any:
    """Build the suite registered as ``name`` with ``params`` (e.g. ``path``, ``limit``)."""
    from daedal.core import registry

    return registry.create("suites", name, params)
