"""Dream: native model (:mod:`.modeling`) and engine adapter (:class:`Dream`).

The adapter is imported lazily so that ``daedal.models.dream.modeling`` can be used
without importing transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daedal.models.dream.adapter import Dream

__all__ = ["Dream"]


def __getattr__(name: str) -> Any:
    if name == "Dream":
        from daedal.models.dream.adapter import Dream

        return Dream
    raise AttributeError(f"module 'daedal.models.dream' has no attribute {name!r}")
