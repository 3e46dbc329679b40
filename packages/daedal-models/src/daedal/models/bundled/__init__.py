"""The bundled tiny model: a small LLaDA-architecture checkpoint shipped with daedal-models.

It was trained by ``packages/daedal-models/training/train_tiny.py`` on the synthetic
tasks of :mod:`daedal.models.bundled.tasks` and loads through the very same
:class:`daedal.models.LLaDA` adapter as LLaDA-8B-Instruct, so the CLI, the tests and the
examples run the real code path on any machine::

    from daedal.models import bundled
    adapter = bundled.load()                  # CPU, float32
    settings = bundled.daedal_settings()      # the recommended DAEDAL parameters

Only the standard library is imported at module import time (``daedal models`` lists
this entry point without loading torch).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["NAME", "daedal_settings", "load", "path"]

NAME = "tiny"
"""The bundled checkpoint's name (its directory under this package)."""


def path(name: str = NAME) -> Path:
    """The directory of a shipped checkpoint (config.json, model.safetensors, tokenizer, ...)."""
    directory = Path(__file__).resolve().parent / name
    if not (directory / "config.json").is_file():
        from daedal.core.errors import AdapterError

        raise AdapterError(
            f"the bundled checkpoint {name!r} is missing from {directory}; reinstall daedal-models "
            "or train it with packages/daedal-models/training/train_tiny.py.",
            code="checkpoint",
        )
    return directory


def daedal_settings(directory: str | Path | None = None) -> dict[str, Any]:
    """The DAEDAL parameters recommended for a checkpoint (its ``daedal.json``), or ``{}``."""
    file = Path(directory if directory is not None else path()) / "daedal.json"
    if not file.is_file():
        return {}
    return dict(json.loads(file.read_text(encoding="utf-8")).get("policies", {}).get("daedal", {}))


def load(dtype: Any = "auto", device: Any = None, **kwargs: Any) -> Any:
    """The :class:`daedal.models.LLaDA` adapter on the bundled checkpoint (CPU by default)."""
    from daedal.models.llada import LLaDA

    return LLaDA.from_pretrained(str(path()), dtype=dtype, device=device, **kwargs)
