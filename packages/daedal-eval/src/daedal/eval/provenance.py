"""Content hashes for manifests: the problems a run scored and the checkpoint it loaded.

* ``dataset_sha256``: SHA-256 of the problems as canonical JSON (sorted keys, one per line,
  after ``limit``), so hub and local copies of the same data hash alike.
* ``checkpoint``: per file of a checkpoint directory, its size and SHA-256. Files above
  ``full_limit`` bytes (the weights of an 8B model) are hashed over their size and first and
  last 16 MiB (``"sampled": true``), which catches a different or truncated file in well
  under a second instead of minutes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["checkpoint_hashes", "dataset_hash", "file_hash"]

_CHUNK = 16 << 20


def dataset_hash(docs: Iterable[Mapping[str, Any]]) -> str:
    digest = hashlib.sha256()
    for doc in docs:
        digest.update(json.dumps(doc, sort_keys=True, ensure_ascii=False, default=repr).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def file_hash(path: str | os.PathLike[str], *, full_limit: int = 256 << 20) -> dict[str, Any]:
    p = Path(path)
    size = p.stat().st_size
    digest = hashlib.sha256()
    with open(p, "rb") as f:
        if size <= full_limit:
            for block in iter(lambda: f.read(_CHUNK), b""):
                digest.update(block)
            return {"size": size, "sha256": digest.hexdigest()}
        digest.update(str(size).encode())
        digest.update(f.read(_CHUNK))
        f.seek(size - _CHUNK)
        digest.update(f.read(_CHUNK))
    return {"size": size, "sha256": digest.hexdigest(), "sampled": True}


def checkpoint_hashes(directory: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """Hashes of the files in a checkpoint directory (None when it is not a local directory)."""
    if directory is None or not Path(directory).is_dir():
        return None
    root = Path(directory)
    return {
        str(p.relative_to(root)): file_hash(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")
    }
