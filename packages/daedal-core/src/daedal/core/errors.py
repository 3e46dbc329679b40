"""The error tree of daedal.

Every class subclasses both :class:`DaedalError` and the builtin a caller would
naturally catch (``ValueError`` for bad arguments, ``LookupError`` for unknown
names), so ``except ValueError`` keeps working in code that does not know daedal.

Messages name the argument, show the bad value and say what to do. Each error
carries a stable ``code`` that has an anchor on the errors reference page.
"""

from __future__ import annotations

from typing import Literal

ErrorCode = Literal[
    "bad-argument",
    "bad-spec",
    "duplicate-policy",
    "unknown-hook",
    "plugin-load",
    "policy-not-found",
    "illegal-decision",
    "no-decision",
    "no-progress",
    "conflicting-decoders",
    "canvas-invariant",
    "adapter",
    "checkpoint",
]

DOCS_URL = "https://daedal.readthedocs.io/en/latest/reference/errors/"


class DaedalError(Exception):
    """Root of every error daedal raises on purpose.

    Args:
        message: What went wrong and how to fix it.
        code: A stable identifier, documented on the errors reference page.
    """

    code: ErrorCode = "bad-argument"

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.message} (see {DOCS_URL}#{self.code})"


class ConfigError(DaedalError, ValueError):
    """A bad argument, parameter or spec given by the user."""

    code: ErrorCode = "bad-argument"


class PluginError(DaedalError):
    """A plugin could not be loaded or registered (bad hook name, duplicate, ...)."""

    code: ErrorCode = "plugin-load"


class PolicyNotFoundError(PluginError, LookupError):
    """A name was looked up in an entry-point group where nothing has that name."""

    code: ErrorCode = "policy-not-found"


class PolicyError(DaedalError):
    """A policy's decision broke a canvas invariant, or the run stopped making progress."""

    code: ErrorCode = "illegal-decision"


class NoDecisionError(PolicyError):
    """Every implementation of a decision hook returned None."""

    code: ErrorCode = "no-decision"


class CanvasError(DaedalError, ValueError):
    """A canvas was built or changed in a way that breaks one of its invariants."""

    code: ErrorCode = "canvas-invariant"


class AdapterError(DaedalError, ValueError):
    """A model adapter or checkpoint is unusable (not a checkpoint, keys or vocabulary mismatch, ...)."""

    code: ErrorCode = "adapter"


class DaedalWarning(UserWarning):
    """Warnings daedal emits, such as a policy that is shadowed by another."""


for _cls in (
    DaedalError,
    ConfigError,
    PluginError,
    PolicyNotFoundError,
    PolicyError,
    NoDecisionError,
    CanvasError,
    AdapterError,
    DaedalWarning,
):
    _cls.__module__ = "daedal.core"
del _cls
