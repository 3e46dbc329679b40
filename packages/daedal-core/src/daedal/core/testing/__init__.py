"""Helpers for testing policies and adapters: a fake model, Hypothesis strategies, a contract.

``hypothesis`` is needed only by :mod:`daedal.core.testing.strategies`; the rest
imports with the core's own dependencies.
"""

from daedal.core.testing.fake import FakeAdapter
from daedal.core.testing.helpers import assert_canvas_equal

__all__ = ["FakeAdapter", "assert_canvas_equal"]
