"""Sweeps: the fixed-length baseline over canvas lengths plus DAEDAL, on one loaded model.

Each configuration is an ordinary resumable run in its own directory
(``<output>/fixed-<L>``, ``<output>/daedal``); the sweep then writes ``table.md`` and
``sweep.png`` next to them. A killed sweep resumes where it stopped. Started from
``daedal eval sweep``, the directory also holds ``sweep-config.json``, the sweep's config.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from daedal.core.errors import ConfigError
from daedal.eval import report
from daedal.eval.runner import run_suite
from daedal.eval.suites.base import Suite

__all__ = ["PAPER_LENGTHS", "sweep"]

#: The sweep's config record in its directory (see :mod:`daedal.eval.config`).
CONFIG = "sweep-config.json"
#: The baseline lengths of the paper's scripts.
PAPER_LENGTHS = (32, 64, 128, 256, 512, 1024, 2048)


def sweep(
    engine: Any,
    suite: Suite,
    output: str | os.PathLike[str],
    *,
    lengths: Sequence[int] = PAPER_LENGTHS,
    block_length: int = 32,
    daedal: Sequence[object] | None = (),
    fixed_policies: Callable[[int], Sequence[object]] | None = None,
    fixed_params: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    **run_options: Any,
) -> list[dict[str, Any]]:
    """Run the fixed-length baseline at each length, then DAEDAL; write the table and plot.

    Args:
        engine: An engine whose adapter is reused; its policies are replaced per run.
        suite: The benchmark.
        output: Sweep directory.
        lengths: Canvas lengths of the baseline (steps = length, blocks of ``block_length``).
        block_length: Baseline block length (cut to the length when longer).
        daedal: Policies (or policy specs) of the DAEDAL run; ``()`` for ``Daedal()``
            with the paper's setting, None to skip it.
        fixed_policies: ``length -> policies`` of the baseline (default: LLaDA decoding).
        fixed_params: More parameters of the default baseline, e.g.
            ``{"reference_compat": True}`` for the DAEDAL repository's baseline.
        config: The sweep's config (:mod:`daedal.eval.config`), written to
            ``sweep-config.json``; each run's manifest then records the ``eval run``
            config that reruns it (for the runs whose policies are specs: the default
            baseline, a ``daedal`` given as specs).
        **run_options: Passed to :func:`~daedal.eval.runner.run_suite` (seed, batch_size,
            model, rank, world_size, barrier, progress...).

    Returns:
        One row per configuration: ``length`` (None for DAEDAL), ``output``, ``metrics``.
    """
    from daedal.eval.build import build_policies, fixed_length_policies
    from daedal.models.runconfig import PolicySpec, format_policy_spec

    if not lengths and daedal is None:
        raise ConfigError("`lengths` is empty and `daedal` is None: nothing to sweep")
    bad = [n for n in lengths if not isinstance(n, int) or isinstance(n, bool) or n < 1]
    if bad:
        raise ConfigError(f"`lengths` must be positive ints, got {bad}")
    extra = dict(fixed_params or {})
    make_fixed = fixed_policies or (lambda n: fixed_length_policies(n, steps=n, block_length=block_length, **extra))
    out = Path(output)
    if config is not None and run_options.get("rank", 0) == 0:
        # the sweep's own config, a record like a manifest: --config <sweep directory> reruns the sweep
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG).write_text(json.dumps({"config": dict(config)}, indent=2) + "\n", encoding="utf-8")

    def fixed_specs(n: int) -> list[str] | None:
        if fixed_policies is not None:
            return None
        params = {"gen_length": n, "steps": n, "block_length": block_length, **extra}
        return [format_policy_spec(PolicySpec("llada-decoding", params))]

    configs: list[tuple[int | None, Sequence[object], list[str] | None]] = [
        (n, make_fixed(n), fixed_specs(n)) for n in lengths
    ]
    if daedal is not None:
        given = list(daedal) or ["daedal"]
        specs = (
            [s if isinstance(s, str) else format_policy_spec(s) for s in given]
            if all(isinstance(s, (str, PolicySpec)) for s in given)
            else None
        )
        configs.append((None, build_policies(given), specs))
    rows = []
    for length, policies, specs in configs:
        name = "daedal" if length is None else f"fixed-{length}"
        cell = None
        if config is not None and specs is not None:
            from daedal.eval.config import cell_config

            cell = cell_config(config, suite=str(config.get("suite") or suite.name), policies=specs, output=out / name)
        summary = run_suite(
            engine.with_policies(list(policies)),
            suite,
            out / name,
            description=f"{suite.name} {name}",
            config=cell,
            **run_options,
        )
        rows.append({"length": length, "output": str(out / name), "metrics": summary["metrics"]})
    if run_options.get("rank", 0) == 0:
        write_report(rows, out, suite=suite.name)
    return rows


def write_report(rows: Sequence[Mapping[str, Any]], output: str | os.PathLike[str], *, suite: str) -> dict[str, Path]:
    """Write ``table.md``, ``sweep.png`` and ``sweep.json`` into ``output``."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    table = out / "table.md"
    table.write_text(report.markdown_table(rows, suite=suite), encoding="utf-8")
    plot = report.plot_sweep(rows, out / "sweep.png", title=suite)
    data = out / "sweep.json"
    data.write_text(json.dumps(list(rows), indent=2, default=repr) + "\n", encoding="utf-8")
    return {"table": table, "plot": plot, "data": data}


def collect(output: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of an existing sweep directory, aggregated again from each run's samples.

    Runs without a summary yet (a sweep killed mid-run) are included with the samples they
    have; ``complete`` says whether a run has every problem.
    """
    from daedal.eval.runner import MANIFEST, summarize

    out = Path(output)
    rows = []
    for manifest_path in sorted(out.glob(f"*/{MANIFEST}")):
        name = manifest_path.parent.name
        if name == "daedal":
            length = None
        elif name.startswith("fixed-") and name[6:].isdigit():
            length = int(name[6:])
        else:
            continue
        summary = summarize(manifest_path.parent)
        rows.append(
            {
                "length": length,
                "output": str(manifest_path.parent),
                "suite": summary["suite"],
                "metrics": summary["metrics"],
                "complete": summary["complete"],
            }
        )
    rows.sort(key=lambda r: (r["length"] is None, r["length"] or 0))
    if not rows:
        raise ConfigError(
            f"`output` {str(out)!r} holds no fixed-<L>/ or daedal/ runs: point `daedal eval report` at a sweep, "
            "paper or run directory"
        )
    return rows
