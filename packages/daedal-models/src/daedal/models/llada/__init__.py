"""LLaDA: native model (:mod:`.modeling`) and engine adapter (:class:`LLaDA`).

The adapter is imported lazily so that ``daedal.models.llada.modeling`` can be used
(e.g. for training) without importing transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daedal.models.llada.adapter import LLaDA

__all__ = ["LLaDA"]


def __getattr__(name: str) -> Any:
    if name == "LLaDA":
        from daedal.models.llada.adapter import LLaDA

        return LLaDA
    raise AttributeError(f"module 'daedal.models.llada' has no attribute {name!r}")
