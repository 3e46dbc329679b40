"""Tables and figures: a sweep's table and plot, and Table 1 of a paper directory."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "collect_paper",
    "markdown_table",
    "plot_sweep",
    "plot_table1",
    "table1_csv",
    "table1_markdown",
    "write_table1",
]


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


# -- Table 1 of a paper directory ------------------------------------------------------------

TABLE1_MD = "table1.md"
TABLE1_CSV = "table1.csv"
TABLE1_PNG = "table1.png"
#: Benchmark column order of the paper's Table 1; other suites follow in grid order.
PAPER_ORDER = ("gsm8k", "math500", "humaneval", "mbpp")
_CSV_FIELDS = (
    "method",
    "length",
    "suite",
    "n",
    "accuracy",
    "e_ratio",
    "n_token",
    "e_token",
    "nfe_per_sample",
    "wall_time_s",
    "tokens_per_s",
    "complete",
)


def _method_label(method: str) -> str:
    return "DAEDAL" if method == "daedal" else f"Fixed L={method.split('-', 1)[1]}"


def collect_paper(output: str | os.PathLike[str]) -> dict[str, Any]:
    """The cells of a paper directory, aggregated again from each run's ``samples.jsonl``.

    Returns:
        ``{"grid": paper.json, "suites": [...], "methods": [...], "cells": {(method, suite):
        metrics}}``; a method or suite without samples yet is missing from ``cells``.

    Raises:
        ConfigError: ``output`` holds no ``paper.json``.
    """
    import json

    from daedal.core.errors import ConfigError
    from daedal.eval import metrics
    from daedal.eval.runner import MANIFEST, all_records

    out = Path(output)
    grid_path = out / "paper.json"
    if not grid_path.is_file():
        raise ConfigError(f"`output` {str(out)!r} holds no paper.json: point it at a `daedal eval paper` directory")
    grid = json.loads(grid_path.read_text(encoding="utf-8"))
    suites = sorted(
        grid["suites"],
        key=lambda s: (PAPER_ORDER.index(s) if s in PAPER_ORDER else len(PAPER_ORDER), grid["suites"].index(s)),
    )
    methods = [f"fixed-{n}" for n in grid["lengths"]] + ["daedal"]
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for suite in suites:
        for method in methods:
            run = out / suite / method
            if not (run / MANIFEST).is_file():
                continue
            records = all_records(run)
            if not records:
                continue
            n_docs = json.loads((run / MANIFEST).read_text(encoding="utf-8")).get("suite", {}).get("n_docs")
            m = metrics.aggregate(records)
            total_tokens = m["n_token"] * m["n"]
            m["tokens_per_s"] = total_tokens / m["total_wall_time"] if m["total_wall_time"] > 0 else 0.0
            m["complete"] = m["n"] == n_docs
            cells[(method, suite)] = m
    return {"grid": grid, "suites": suites, "methods": methods, "cells": cells}


def _caption(grid: Mapping[str, Any], cells: Mapping[tuple[str, str], Mapping[str, Any]], suites: Sequence[str]) -> str:
    model = (grid.get("model") or {}).get("model") or "model"
    ns = {s: next((c["n"] for (m, su), c in cells.items() if su == s), 0) for s in suites}
    mode = "reference_compat (both methods)" if grid.get("reference_compat") else "default mode (both methods)"
    counts = ", ".join(f"{s} n={ns[s]}" for s in suites)
    return f"{model}; {mode}; {counts}; seed {grid.get('seed')}, batch {grid.get('batch_size')}"


def table1_markdown(paper: Mapping[str, Any]) -> str:
    """Table 1 as the paper lays it out: methods x benchmarks (Acc, E_ratio), the average, costs.

    The best accuracy of each column is bold. Cost columns: NFE per sample and wall time
    per sample (means over every sample of every benchmark) and tokens per second (all
    generated tokens over all wall time). A cell whose run is still incomplete is marked
    with an asterisk.
    """
    suites, methods, cells = paper["suites"], paper["methods"], paper["cells"]
    head = ["Method"]  # each benchmark's two numbers side by side, as in the paper
    for s in suites:
        head += [f"{s} Acc (%)", f"{s} E_ratio (%)"]
    head += ["Avg Acc (%)", "Avg E_ratio (%)", "NFE / sample", "wall s / sample", "tokens / s"]
    best = {s: max((cells[(m, s)]["accuracy"] for m in methods if (m, s) in cells), default=None) for s in suites}
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for method in methods:
        row = [_method_label(method)]
        accs, ratios, nfe, wall, n_all, tokens, all_complete = [], [], 0.0, 0.0, 0, 0.0, True
        for s in suites:
            c = cells.get((method, s))
            if c is None:
                row += ["–", "–"]
                continue
            mark = "" if c["complete"] else "*"
            acc = f"{c['accuracy']:.1f}{mark}"
            row += [f"**{acc}**" if c["accuracy"] == best[s] else acc, f"{c['e_ratio']:.1f}{mark}"]
            all_complete = all_complete and bool(c["complete"])
            accs.append(c["accuracy"])
            ratios.append(c["e_ratio"])
            nfe += c["forward_passes"] * c["n"]
            wall += c["total_wall_time"]
            n_all += c["n"]
            tokens += c["n_token"] * c["n"]
        full = len(accs) == len(suites) and all_complete
        row.append(f"{sum(accs) / len(accs):.2f}" + ("" if full else "*") if accs else "–")
        row.append(f"{sum(ratios) / len(ratios):.1f}" + ("" if full else "*") if ratios else "–")
        row.append(f"{nfe / n_all:.1f}" if n_all else "–")
        row.append(f"{wall / n_all:.3f}" if n_all else "–")
        row.append(f"{tokens / wall:.1f}" if wall > 0 else "–")
        lines.append("| " + " | ".join(row) + " |")
    note = (
        f"\n{_caption(paper['grid'], cells, suites)}. Avg = mean over the benchmarks; best accuracy per benchmark "
        "in bold; * = run not complete yet.\n"
    )
    return "\n".join(lines) + "\n" + note


def table1_csv(paper: Mapping[str, Any]) -> str:
    """One CSV line per (method, benchmark) with every figure of the table (no rounding)."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for method in paper["methods"]:
        for suite in paper["suites"]:
            c = paper["cells"].get((method, suite))
            if c is None:
                continue
            writer.writerow(
                {
                    "method": method,
                    "length": "" if method == "daedal" else method.split("-", 1)[1],
                    "suite": suite,
                    "n": c["n"],
                    "accuracy": c["accuracy"],
                    "e_ratio": c["e_ratio"],
                    "n_token": c["n_token"],
                    "e_token": c["e_token"],
                    "nfe_per_sample": c["forward_passes"],
                    "wall_time_s": c["total_wall_time"],
                    "tokens_per_s": c["tokens_per_s"],
                    "complete": c["complete"],
                }
            )
    return buf.getvalue()


def plot_table1(paper: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Accuracy and E_ratio against canvas length per benchmark, 300 dpi; DAEDAL a labelled star.

    Fixed-length runs are lines over their length (log2 axis); DAEDAL, whose length varies
    per sample, is a red star at its mean generated length (N_token). The title names the
    model, the mode and each benchmark's n.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites, methods, cells = paper["suites"], paper["methods"], paper["cells"]
    width = max(6.0, 4.2 * len(suites))
    fig, axes = plt.subplots(2, len(suites), figsize=(width, 7.5), squeeze=False)
    for col, suite in enumerate(suites):
        fixed = [(int(m.split("-", 1)[1]), cells[(m, suite)]) for m in methods if m != "daedal" and (m, suite) in cells]
        daedal = cells.get(("daedal", suite))
        n = next((c["n"] for (m, s), c in cells.items() if s == suite), 0)
        for row, (key, name) in enumerate((("accuracy", "accuracy (%)"), ("e_ratio", "E_ratio (%)"))):
            ax = axes[row][col]
            if fixed:
                ax.plot([x for x, _ in fixed], [c[key] for _, c in fixed], "o-", color="tab:blue", label="fixed length")
            if daedal is not None:
                x = max(daedal["n_token"], 1.0)
                ax.plot([x], [daedal[key]], "*", color="tab:red", markersize=16, label="DAEDAL")
                ax.annotate("DAEDAL", (x, daedal[key]), textcoords="offset points", xytext=(6, 6), color="tab:red")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("canvas length (tokens); DAEDAL at its mean length")
            ax.set_ylabel(name)
            ax.set_title(f"{suite} (n={n})")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    import textwrap

    fig.suptitle("\n".join(textwrap.wrap(_caption(paper["grid"], cells, suites), width=int(width * 13))), fontsize=9)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=300)
    plt.close(fig)
    return out


def write_table1(output: str | os.PathLike[str]) -> dict[str, Path]:
    """(Re)write ``table1.md``, ``table1.csv`` and ``table1.png`` of a paper directory from its samples."""
    from daedal.core.errors import ConfigError

    out = Path(output)
    paper = collect_paper(out)
    if not paper["cells"]:
        raise ConfigError(f"`output` {str(out)!r} holds no samples yet: run `daedal eval paper` into it first")
    md, csv_path = out / TABLE1_MD, out / TABLE1_CSV
    md.write_text(table1_markdown(paper), encoding="utf-8")
    csv_path.write_text(table1_csv(paper), encoding="utf-8")
    png = plot_table1(paper, out / TABLE1_PNG)
    return {"table": md, "csv": csv_path, "plot": png}
