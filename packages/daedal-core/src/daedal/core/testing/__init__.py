"""Helpers for testing policies and adapters: a fake model, Hypothesis strategies, a contract.

``hypothesis`` is needed only by :mod:`daedal.core.testing.strategies` and ``pytest`` only
by :mod:`daedal.core.testing.contract`; the rest imports with the core's own dependencies.
"""

from daedal.core.testing.fake import FakeAdapter
from daedal.core.testing.helpers import BlockWindow, ConfidentFill, Parts, assert_canvas_equal, make_state

__all__ = ["BlockWindow", "ConfidentFill", "FakeAdapter", "Parts", "assert_canvas_equal", "make_state"]
