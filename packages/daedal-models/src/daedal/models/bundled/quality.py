"""The bundled model's quality table: DAEDAL against fixed-length decoding.

Run it with::

    python -m daedal.models.bundled.quality --per-family 50

For each method it denoises the held-out set of :mod:`daedal.models.bundled.tasks`
greedily on CPU and reports exact-match accuracy per family and overall, forward passes
per prompt, the effective-token ratio (non-EOS generated tokens / generated slots) and
wall time. Methods:

* ``daedal``: :class:`daedal.policies.Daedal` with the checkpoint's recommended
  settings (``daedal.json``), starting from a short canvas;
* ``fixed-N``: LLaDA's decoding with a fixed generation length ``N``, one token per step
  (``steps = N``), semi-autoregressive blocks of ``min(N, 32)``;
* ``--variant NAME:KEY=VALUE,...``: more DAEDAL rows, the recommended settings with
  overrides (e.g. ``"stage 2 only:eos_confidence_threshold=0"``, where the canvas grows by
  stage-2 insertion alone).

Each row also counts the stage-2 insertions the method made over the whole set.

``--json`` prints the full report (including every example's final length) instead of
the table; :func:`evaluate` is the library entry point.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daedal.models.bundled import tasks

__all__ = [
    "Method",
    "daedal_method",
    "evaluate",
    "fixed_method",
    "format_size_table",
    "format_table",
    "main",
    "size_buckets",
]


class Method:
    """A named decoding method: a factory for the engine's policy list."""

    def __init__(self, name: str, policies: Any) -> None:
        self.name = name
        self._policies = policies

    def policies(self) -> list[Any]:
        return list(self._policies())


def daedal_method(settings: dict[str, Any] | None = None, name: str = "daedal") -> Method:
    """DAEDAL with ``settings`` (default: the bundled checkpoint's ``daedal.json``)."""
    from daedal.models import bundled
    from daedal.policies import Daedal

    params = dict(bundled.daedal_settings() if settings is None else settings)
    Daedal(**params)  # validate now, not in the middle of a run
    return Method(name, lambda: [Daedal(**params)])


def fixed_method(gen_length: int, block_length: int = 32) -> Method:
    """LLaDA's fixed-length low-confidence decoding, one token per step."""
    from daedal.core import FixedLength, SemiAutoregressive

    block = min(gen_length, block_length)
    if gen_length % block:
        raise ValueError(f"gen_length={gen_length} must be a multiple of block_length={block}.")
    return Method(
        f"fixed-{gen_length}",
        lambda: [FixedLength(gen_length=gen_length), SemiAutoregressive(block_length=block, steps=gen_length)],
    )


def evaluate(
    adapter: Any,
    methods: Sequence[Method],
    data: Sequence[dict[str, Any]],
    *,
    batch_size: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Run every method over ``data`` and score it.

    Args:
        adapter: A model adapter (e.g. :func:`daedal.models.bundled.load`).
        methods: What to compare.
        data: Examples as made by :func:`daedal.models.bundled.tasks.heldout_set`.
        batch_size: Prompts per engine run (1 makes forward passes a per-prompt figure).
        seed: Engine seed (greedy decoding does not use it).

    Returns:
        ``{"methods": {name: {...}}, "n": len(data)}``; each method has ``accuracy``
        (per family and ``overall``), ``forward_passes`` (per prompt), ``effective_ratio``,
        ``wall_time`` (seconds), ``insertions`` (stage-2 insertions over the set),
        ``mean_length`` per family and ``examples`` (family, size,
        answer tokens, final length, correct).
    """
    from daedal.core import Engine, EngineConfig

    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be >= 1.")
    report: dict[str, Any] = {"n": len(data), "batch_size": batch_size, "methods": {}}
    for method in methods:
        engine = Engine(adapter, policies=method.policies(), config=EngineConfig(seed=seed))
        examples, passes, generated, effective, insertions = [], 0, 0, 0, 0
        start = time.perf_counter()
        for i in range(0, len(data), batch_size):
            chunk = data[i : i + batch_size]
            result = engine.generate([d["prompt"] for d in chunk])
            # forward passes are per batch; weight them by the rows they served.
            passes += result.stats.forward_passes * len(chunk)
            generated += result.stats.generated_tokens
            effective += result.stats.effective_tokens
            insertions += result.stats.expansions
            for d, text, length in zip(chunk, result.texts or [], result.lengths, strict=False):
                examples.append(
                    {
                        "family": d["family"],
                        "size": d["size"],
                        "answer_tokens": tasks.answer_tokens(d["family"], d["size"]),
                        "length": int(length),
                        "correct": bool(tasks.score(d["family"], d["prompt"], text)),
                        "output": text,
                    }
                )
        wall = time.perf_counter() - start
        accuracy = {}
        mean_length = {}
        for family in tasks.FAMILIES:
            rows = [e for e in examples if e["family"] == family]
            if rows:
                accuracy[family] = sum(e["correct"] for e in rows) / len(rows)
                mean_length[family] = sum(e["length"] for e in rows) / len(rows)
        accuracy["overall"] = sum(e["correct"] for e in examples) / max(1, len(examples))
        report["methods"][method.name] = {
            "accuracy": accuracy,
            "forward_passes": passes / max(1, len(examples)),
            "effective_ratio": effective / generated if generated else 0.0,
            "wall_time": wall,
            "insertions": insertions,
            "mean_length": mean_length,
            "examples": examples,
        }
    return report


def format_table(report: dict[str, Any]) -> str:
    """The report as a Markdown table (accuracy in %, forward passes per prompt)."""
    fams = list(tasks.FAMILIES)
    head = ["method", *fams, "overall", "NFE / prompt", "insertions", "eff. ratio", "mean len", "wall s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for name, m in report["methods"].items():
        acc = m["accuracy"]
        lengths = [e["length"] for e in m["examples"]]
        cells = [name] + [f"{100 * acc[f]:.1f}" if f in acc else "-" for f in fams]
        cells += [
            f"{100 * acc['overall']:.1f}",
            f"{m['forward_passes']:.1f}",
            str(m.get("insertions", 0)),
            f"{m['effective_ratio']:.3f}",
            f"{sum(lengths) / max(1, len(lengths)):.1f}",
            f"{m['wall_time']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def size_buckets(family: str, n: int = 4) -> list[tuple[int, int]]:
    """``n`` inclusive size ranges splitting a family's range evenly (``reverse``: 1-6, 7-12, ...)."""
    lo, hi = tasks.SIZES[family]
    width = hi - lo + 1
    edges = [lo + (width * i) // n for i in range(n + 1)]
    return [(edges[i], edges[i + 1] - 1) for i in range(n) if edges[i + 1] > edges[i]]


def format_size_table(report: dict[str, Any], method: str = "daedal") -> str:
    """Accuracy of one method by family and size range (the answers' lengths), as Markdown."""
    examples = report["methods"][method]["examples"]
    lines = ["| family | " + " | ".join(f"size {i + 1}/4" for i in range(4)) + " |", "|---|" + "---:|" * 4]
    for family in tasks.FAMILIES:
        rows = [e for e in examples if e["family"] == family]
        if not rows:
            continue
        cells = []
        for lo, hi in size_buckets(family):
            hits = [e["correct"] for e in rows if lo <= e["size"] <= hi]
            tokens = f"{tasks.answer_tokens(family, lo)}-{tasks.answer_tokens(family, hi)} tok"
            cells.append(f"{lo}-{hi} ({tokens}): {100 * sum(hits) / len(hits):.0f} %" if hits else f"{lo}-{hi}: -")
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m daedal.models.bundled.quality",
        description="Quality table of the bundled tiny model: DAEDAL vs fixed-length decoding (greedy).",
    )
    p.add_argument("--per-family", type=int, default=50, help="held-out prompts per family (sizes spread evenly)")
    p.add_argument("--seed", type=int, default=1234, help="seed of the held-out set")
    p.add_argument("--fixed", default="16,32,64", help="comma-separated fixed generation lengths ('' for none)")
    p.add_argument("--no-daedal", action="store_true", help="leave DAEDAL out")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a DAEDAL setting")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="add a DAEDAL row named NAME: the (--set) settings with these overrides; repeatable",
    )
    p.add_argument("--model", default=None, help="checkpoint directory (default: the bundled model)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--families", default=",".join(tasks.FAMILIES), help="comma-separated families")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print the full JSON report instead of the table")
    p.add_argument("--by-size", action="store_true", help="also print DAEDAL's accuracy by size range")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    import torch

    from daedal.core.registry import parse_assignments
    from daedal.models import bundled

    if args.threads:
        torch.set_num_threads(args.threads)
    directory = Path(args.model) if args.model else bundled.path()
    from daedal.models.llada import LLaDA

    adapter = LLaDA.from_pretrained(str(directory), dtype="float32", device="cpu")
    settings = bundled.daedal_settings(directory) or bundled.daedal_settings()
    settings.update(parse_assignments(args.set))
    methods: list[Method] = [] if args.no_daedal else [daedal_method(settings)]
    for variant in args.variant:
        name, sep, spec = variant.partition(":")
        if not sep or not name.strip():
            raise SystemExit(
                f"--variant {variant!r}: use NAME:KEY=VALUE,... (e.g. 'stage 2 only:eos_confidence_threshold=0')"
            )
        overrides = parse_assignments([part for part in spec.split(",") if part.strip()])
        methods.append(daedal_method({**settings, **overrides}, name=name.strip()))
    methods += [fixed_method(int(n)) for n in args.fixed.split(",") if n.strip()]
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    data = [d for d in tasks.heldout_set(args.per_family, seed=args.seed) if d["family"] in families]
    report = evaluate(adapter, methods, data, batch_size=args.batch_size)
    report["settings"] = settings
    report["command"] = "python -m daedal.models.bundled.quality " + " ".join(
        sys.argv[1:] if argv is None else list(argv)
    )
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(format_table(report))
        print(
            f"\n{len(data)} held-out prompts ({args.per_family} per family), greedy, CPU, batch size "
            f"{args.batch_size}; DAEDAL settings: {json.dumps(settings, sort_keys=True)}"
        )
        if args.by_size and "daedal" in report["methods"]:
            print("\n" + format_size_table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
