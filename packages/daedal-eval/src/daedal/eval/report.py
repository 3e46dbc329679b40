"""The paper-style table (markdown) and the accuracy / E_ratio plot of a sweep."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["markdown_table", "plot_sweep"]


def _label(row: Mapping[str, Any]) -> str:
    return "DAEDAL" if row.get("length") is None else f"L={row['length']}"


def markdown_table(rows: Sequence[Mapping[str, Any]], *, suite: str = "") -> str:
    """A table like the paper's Table 1 for one suite: one line per configuration.

    Args:
        rows: Each with ``length`` (None for DAEDAL) and ``metrics`` (from
            :func:`daedal.eval.metrics.aggregate`).
        suite: Name shown in the header.

    Returns:
        Markdown text; the best accuracy is bold.
    """
    best = max((r["metrics"]["accuracy"] for r in rows), default=None)
    head = f"| {suite or 'config'} | Acc (%) | N_token | E_token | E_ratio (%) | NFE | expansions | n |\n"
    head += "|---|---:|---:|---:|---:|---:|---:|---:|\n"
    lines = []
    for r in rows:
        m = r["metrics"]
        acc = f"{m['accuracy']:.1f}"
        if best is not None and m["accuracy"] == best:
            acc = f"**{acc}**"
        lines.append(
            f"| {_label(r)} | {acc} | {m['n_token']:.1f} | {m['e_token']:.1f} | {m['e_ratio']:.1f} | "
            f"{m['forward_passes']:.1f} | {m['expansions']:.2f} | {m['n']} |"
        )
    return head + "\n".join(lines) + "\n"


def plot_sweep(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], *, title: str = "") -> Path:
    """Accuracy and E_ratio against canvas length (log2 axis), DAEDAL marked at its N_token.

    Fixed-length runs are drawn as lines over their length; DAEDAL, whose canvas length
    varies per sample, as a star at its mean generated length (N_token).

    Returns:
        The PNG path.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display needed; set before pyplot is imported
    import matplotlib.pyplot as plt

    fixed = sorted((r for r in rows if r.get("length") is not None), key=lambda r: r["length"])
    daedal = [r for r in rows if r.get("length") is None]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, name in ((axes[0], "accuracy", "accuracy (%)"), (axes[1], "e_ratio", "E_ratio (%)")):
        if fixed:
            ax.plot([r["length"] for r in fixed], [r["metrics"][key] for r in fixed], "o-", label="fixed length")
        for r in daedal:
            ax.plot([max(r["metrics"]["n_token"], 1.0)], [r["metrics"][key]], "r*", markersize=14, label="DAEDAL")
            ax.axhline(r["metrics"][key], color="r", linestyle=":", linewidth=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("canvas length (tokens)")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=100)
    plt.close(fig)
    return out
