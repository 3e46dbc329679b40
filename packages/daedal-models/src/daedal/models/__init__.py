"""Model adapters for daedal: native LLaDA and Dream implementations, and ``HFAdapter``, their base.

``LLaDA``, ``Dream`` and ``HFAdapter`` are imported lazily (on first attribute access) so that listing
the ``daedal.adapters`` entry points does not import torch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daedal.models._adapter import HFAdapter
    from daedal.models.dream import Dream
    from daedal.models.llada import LLaDA

__all__ = ["Dream", "HFAdapter", "LLaDA"]

_LAZY = {"LLaDA": "daedal.models.llada", "Dream": "daedal.models.dream", "HFAdapter": "daedal.models._adapter"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'daedal.models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
