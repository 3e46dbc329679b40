"""The paper's grid in one call: the fixed-length baseline at each length and DAEDAL, over suites.

``run_paper`` runs, for every suite, ``<output>/<suite>/fixed-<L>`` for each length and
``<output>/<suite>/daedal``: ordinary resumable, re-scorable runs
(:func:`~daedal.eval.runner.run_suite`). Both methods run in the same mode, never mixed:
``reference_compat=True`` for both (the DAEDAL repository's code paths, batch-dependent) or
the default mode for both. ``paper.json`` records the grid; running again into the same
directory resumes it and refuses a different grid. Table 1 is then written next to it
(:func:`~daedal.eval.report.write_table1`): ``table1.md``, ``table1.csv`` and a 300 dpi
``table1.png``.

Example::

    rows = run_paper(adapter, [Synthetic(limit=20)], "runs/table1", lengths=(32, 64), model={"model": "bundled"})
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from daedal.core.errors import ConfigError
from daedal.eval.runner import run_suite
from daedal.eval.suites.base import Suite

__all__ = ["GRID", "grid_policies", "grid_specs", "run_paper"]

#: The grid description file of a paper directory.
GRID = "paper.json"


def grid_specs(
    lengths: Sequence[int],
    *,
    reference_compat: bool,
    block_length: int = 32,
    daedal: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> list[tuple[str, int | None, list[str]]]:
    """``(name, length, policy specs)`` of each method of the grid, all in one mode.

    Args:
        lengths: Baseline canvas lengths (steps = length, blocks of ``block_length``).
        reference_compat: Both methods in the reference implementation's mode, or both not.
        block_length: Baseline block length (cut to the length when longer).
        daedal: DAEDAL parameters (e.g. a checkpoint's recommended settings).
        extra: Parameters both methods share (``temperature``...).
    """
    from daedal.models.runconfig import PolicySpec, format_policy_spec

    bad = [n for n in lengths if not isinstance(n, int) or isinstance(n, bool) or n < 1]
    if bad:
        raise ConfigError(f"`lengths` must be positive ints, got {bad}")
    shared = {**(extra or {}), "reference_compat": bool(reference_compat)}
    methods: list[tuple[str, int | None, list[str]]] = [
        (
            f"fixed-{n}",
            n,
            [
                format_policy_spec(
                    PolicySpec("llada-decoding", {"gen_length": n, "steps": n, "block_length": block_length, **shared})
                )
            ],
        )
        for n in lengths
    ]
    methods.append(("daedal", None, [format_policy_spec(PolicySpec("daedal", {**(daedal or {}), **shared}))]))
    return methods


def grid_policies(
    lengths: Sequence[int],
    *,
    reference_compat: bool,
    block_length: int = 32,
    daedal: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> list[tuple[str, int | None, list[object]]]:
    """``(name, length, policies)`` of each method of the grid: :func:`grid_specs`, built."""
    from daedal.eval.build import build_policies

    return [
        (name, length, build_policies(specs))
        for name, length, specs in grid_specs(
            lengths, reference_compat=reference_compat, block_length=block_length, daedal=daedal, extra=extra
        )
    ]


def _check_grid(path: Path, grid: Mapping[str, Any]) -> None:
    if not path.is_file():
        return
    old = json.loads(path.read_text(encoding="utf-8"))
    for key in ("lengths", "reference_compat", "model", "seed", "block_length", "protocol"):
        if old.get(key) != grid.get(key):
            raise ConfigError(
                f"{str(path)!r} describes another grid ({key}: {json.dumps(old.get(key))} vs {json.dumps(grid.get(key))}): "
                "resume with the same settings or pick another --output"
            )


def run_paper(
    adapter: Any,
    suites: Sequence[Suite],
    output: str | os.PathLike[str],
    *,
    lengths: Sequence[int],
    reference_compat: bool = False,
    block_length: int = 32,
    daedal: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    seed: int = 0,
    batch_size: int = 1,
    model: Mapping[str, Any] | None = None,
    engine_config: Any = None,
    config: Mapping[str, Any] | None = None,
    **run_options: Any,
) -> list[dict[str, Any]]:
    """Run the paper's grid over ``suites`` and write Table 1 (see the module docstring).

    Args:
        adapter: The loaded model, shared by every run.
        suites: The benchmarks (each keeps its own ``protocol``).
        output: The paper directory.
        lengths: Baseline lengths.
        reference_compat: Run both methods in ``reference_compat`` mode.
        block_length: Baseline block length.
        daedal: DAEDAL parameters.
        extra: Parameters both methods share.
        seed: Run seed (see :func:`~daedal.eval.runner.run_suite`).
        batch_size: Prompts per ``generate`` call.
        model: How the model was loaded, for manifests and the table's caption.
        engine_config: The engines' :class:`~daedal.core.EngineConfig` (default: seeded ``seed``).
        config: The grid's ``eval paper`` config (:mod:`daedal.eval.config`), recorded in
            ``paper.json``; each cell's manifest then holds the ``eval run`` config that
            reruns that cell.
        **run_options: Passed to :func:`~daedal.eval.runner.run_suite` (rank, world_size,
            barrier, progress, overwrite).

    Returns:
        One row per (suite, method): ``suite``, ``method``, ``length``, ``output``, ``metrics``.
    """
    from daedal.core import Engine, EngineConfig
    from daedal.eval.report import write_table1

    if not suites:
        raise ConfigError("`suites` is empty: pass at least one suite (--suite)")
    names = [s.name for s in suites]
    if len(set(names)) != len(names):
        raise ConfigError(f"`suites` names a suite twice ({names}): each suite once")
    from daedal.eval.build import build_policies

    methods = [
        (name, length, build_policies(specs), specs)
        for name, length, specs in grid_specs(
            lengths, reference_compat=reference_compat, block_length=block_length, daedal=daedal, extra=extra
        )
    ]
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    grid = {
        "suites": names,
        "protocol": {s.name: s.protocol for s in suites},
        "lengths": list(lengths),
        "reference_compat": bool(reference_compat),
        "block_length": block_length,
        "model": dict(model) if model else None,
        "seed": seed,
        "batch_size": batch_size,
    }
    if config is not None:
        grid["config"] = dict(config)
    rank = int(run_options.get("rank", 0))
    if not run_options.get("overwrite"):
        _check_grid(out / GRID, grid)
    if rank == 0:
        (out / GRID).write_text(json.dumps(grid, indent=2, default=repr) + "\n", encoding="utf-8")
    seeded = engine_config if engine_config is not None else EngineConfig(seed=seed)
    rows = []
    given = list((config or {}).get("suites") or [])
    for i, suite in enumerate(suites):
        for name, length, policies, specs in methods:
            cell = None
            if config is not None:
                from daedal.eval.config import cell_config

                as_given = given[i] if i < len(given) else suite.name  # the registry name, as --suite took it
                cell = cell_config(config, suite=as_given, policies=specs, output=out / suite.name / name)
            summary = run_suite(
                Engine(adapter, policies, config=seeded),
                suite,
                out / suite.name / name,
                seed=seed,
                batch_size=batch_size,
                model=model,
                description=f"{suite.name} {name}",
                config=cell,
                **run_options,
            )
            rows.append(
                {
                    "suite": suite.name,
                    "method": name,
                    "length": length,
                    "output": str(out / suite.name / name),
                    "metrics": summary["metrics"],
                }
            )
    if rank == 0:
        write_table1(out)
    return rows
