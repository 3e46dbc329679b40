"""Per-sample measurements and the paper's aggregate metrics.

Efficiency follows the evaluation scripts (reference semantics E5): each
generation is re-tokenised from its decoded text (special tokens count one each) and
the suite's padding strings are counted in the text:

* ``N_token = Σ tokens / N``
* ``E_token = (Σ tokens − Σ pad) / N``
* ``E_ratio = 1 − Σ pad / Σ tokens`` (corpus level, token weighted; reported in percent)
* ``accuracy = correct / N × 100``
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["aggregate", "count_pad", "count_tokens", "peak_memory_bytes", "reset_peak_memory"]


def count_tokens(adapter: Any, text: str, fallback: int) -> int:
    """Tokens of ``text`` re-encoded without special-token insertion (paper's ``tokens``).

    Uses the adapter's Hugging Face tokenizer when it has one, else its ``encode`` without
    chat template; ``fallback`` (the generated length) when neither can encode.
    """
    tokenizer = getattr(adapter, "tokenizer", None)
    if tokenizer is not None and callable(getattr(tokenizer, "encode", None)):
        return len(tokenizer.encode(text, add_special_tokens=False))
    encode = getattr(adapter, "encode", None)
    if callable(encode):
        try:
            return len(encode([text], chat_template=False)[0])
        except Exception:  # an adapter that cannot encode raw text: fall back to the generated length
            return fallback
    return fallback


def count_pad(text: str, pad_strings: Sequence[str]) -> int:
    """Occurrences of every padding string in ``text`` (all of them, not only trailing ones)."""
    return sum(text.count(s) for s in pad_strings)


def reset_peak_memory(device: Any) -> None:
    """Reset the accelerator's peak-memory counter (no-op on CPU)."""
    if "torch" not in sys.modules:
        return
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: Any) -> int:
    """Peak memory since the last reset: allocated CUDA memory, or the process's max RSS on CPU."""
    if "torch" in sys.modules and str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return int(torch.cuda.max_memory_allocated(device))
    # ru_maxrss is KiB on Linux (a process-lifetime peak: it cannot be reset).
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def aggregate(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The paper's metrics plus engine statistics over sample records.

    Args:
        records: Result records as the runner writes them (``correct``, ``tokens``,
            ``pad``, ``forward_passes``, ...).

    Returns:
        ``n``, ``accuracy`` (%), ``n_token``, ``e_token``, ``e_ratio`` (%), means of
        forward passes, canvas tokens, expansions, generated length and wall time per
        sample, total wall time and the peak memory seen.
    """
    rows = list(records)
    n = len(rows)
    tokens = sum(int(r.get("tokens", 0)) for r in rows)
    pad = sum(int(r.get("pad", 0)) for r in rows)
    return {
        "n": n,
        "accuracy": 100.0 * sum(bool(r.get("correct")) for r in rows) / n if n else 0.0,
        "n_token": tokens / n if n else 0.0,
        "e_token": (tokens - pad) / n if n else 0.0,
        "e_ratio": 100.0 * (1.0 - pad / tokens) if tokens else 0.0,
        "forward_passes": _mean([float(r.get("forward_passes", 0)) for r in rows]),
        "canvas_tokens": _mean([float(r.get("canvas_tokens", 0)) for r in rows]),
        "expansions": _mean([float(r.get("expansions", 0)) for r in rows]),
        "gen_length": _mean([float(r.get("gen_length", 0)) for r in rows]),
        "wall_time": _mean([float(r.get("wall_time", 0.0)) for r in rows]),
        "total_wall_time": sum(float(r.get("wall_time", 0.0)) for r in rows),
        "peak_memory": max((int(r.get("peak_memory", 0)) for r in rows), default=0),
    }
