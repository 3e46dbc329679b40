"""Benchmark the model session: sparse logits against the dense path, and the KV caches.

``sparse`` -- a thin random LLaDA with the real vocabulary (126,464 ids, d_model 128,
2 layers), built from a config, DAEDAL at batch 8 in both modes. The *dense* run is this
version's dense path: every step's LM head, softmax and argmax over the whole canvas (a
policy declares it reads every column); the *sparse* run computes them only where the
policies read. Both must give identical tokens and forward passes (checked). Each run is a
subprocess, so its peak resident memory (``ru_maxrss``, minus the process's memory before
the run) is its own.

``memory`` -- the same model at ``max_gen_length=512`` (the canvas starts at its maximum),
a few stage-2 steps per run: peak memory of the dense and sparse paths.

``cache`` -- the bundled tiny model on its synthetic held-out set, batch 8:
``LLaDADecoding(gen_length=64, steps=64, block_length=16)`` with ``cache=None / "prefix" /
"dual"``, and ``Daedal()`` against ``Daedal(cache=...)``: wall time, exact match, forward
passes and canvas tokens processed per generated token.

Run from the repository root (1 thread; results print as a table)::

    python benchmarks/bench_session.py sparse --max-gen-length 64
    python benchmarks/bench_session.py memory
    python benchmarks/bench_session.py cache --per-family 16
    python benchmarks/bench_session.py cache --per-family 32 --decoders llada --block-lengths 8 16 32

``oracle`` -- on the same held-out set, the answers a cache changes, and whether the engine's
cached decoding equals the tests' per-row transcription of Fast-dLLM's cached loops on them
(the approximation, not a defect)::

    python benchmarks/bench_session.py oracle --per-family 8 --block-lengths 8 16

``--checkpoint DIR`` runs ``cache`` or ``oracle`` on another LLaDA checkpoint directory (with the tokenizer
and ``daedal.json`` of the bundled one), e.g. an earlier training run of the tiny model.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]


class _Tokenizer:
    """The least a daedal-models adapter needs from a tokenizer (prompts are token ids here)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def get_vocab(self) -> dict[str, int]:
        return {"<|mdm_mask|>": 126336}

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return " ".join(map(str, ids))


def thin_llada() -> Any:
    from daedal.models import LLaDA
    from daedal.models.llada import modeling

    torch.manual_seed(0)
    config = modeling.tiny_config(
        d_model=128, n_layers=2, n_heads=4, n_kv_heads=4, mlp_hidden_size=256, max_sequence_length=4096
    )
    return LLaDA.from_model(modeling.LLaDAModelLM(config).eval(), _Tokenizer(126464))


class DenseReads:
    """Makes every step read the whole canvas: this version's dense path."""

    from daedal.core import hookimpl

    @hookimpl
    def prediction_reads(self, state):  # type: ignore[no-untyped-def]
        return True

    @hookimpl
    def select_remask(self, state, prediction, unmask):  # type: ignore[no-untyped-def]
        return None


class StopAfter:
    """Stops the run after ``steps`` denoising steps, noting the peak memory of those steps (memory runs).

    The engine's final fill then commits the masks left; it is not a step of the loop, so the
    peak is read at the last step's event, before it.
    """

    from daedal.core import hookimpl

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.peak = 0

    @hookimpl
    def should_stop(self, state):  # type: ignore[no-untyped-def]
        return state.step >= self.steps

    @hookimpl
    def on_event(self, event, state):  # type: ignore[no-untyped-def]
        if event.kind == "step-finished" and event.step < self.steps:
            self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def prompts(batch: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randint(10, 120000) for _ in range(rng.randint(16, 40))] for _ in range(batch)]


def worker(args: argparse.Namespace) -> None:
    """One run in this process; prints a JSON line."""
    from daedal.core import Engine
    from daedal.policies import Daedal

    torch.set_num_threads(1)
    adapter = thin_llada()
    params = dict(
        initial_gen_length=args.initial,
        max_gen_length=args.max_gen_length,
        block_length=32,
        reference_compat=args.reference_compat,
    )
    policies: list[object] = [Daedal(**params)]
    stop = StopAfter(args.steps) if args.steps else None
    if stop is not None:
        policies.append(stop)
    if args.path == "dense":
        policies.append(DenseReads())
    engine = Engine(adapter, policies)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    result = engine.generate(prompts(args.batch))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss if stop is None else stop.peak
    print(
        json.dumps(
            {
                "path": args.path,
                "wall": wall,
                "cpu": cpu,
                "passes": result.stats.forward_passes,
                "steps": result.stats.steps,
                "tokens": result.tokens,
                "peak_mb": (peak - base) / 1024,
                "model_time": result.stats.model_time,
            }
        )
    )


def spawn(path: str, args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "worker", "--path", path, "--batch", str(args.batch)]
    for key, value in extra.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            cmd.append(flag)
        elif value not in (False, None):
            cmd += [flag, str(value)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def sparse(args: argparse.Namespace) -> None:
    print(f"thin real-vocab LLaDA, DAEDAL, batch {args.batch}, max_gen_length {args.max_gen_length}")
    print(
        f"{'mode':<18}{'path':<8}{'passes':>7}{'wall s':>9}{'cpu s':>9}{'peak MB':>9}{'wall x':>8}{'cpu x':>8}"
        f"{'memory':>8}  identical"
    )
    for compat in [m == "reference" for m in args.modes]:
        runs = {
            p: spawn(p, args, initial=args.initial, max_gen_length=args.max_gen_length, reference_compat=compat)
            for p in ("dense", "sparse")
        }
        same = (
            runs["dense"]["tokens"] == runs["sparse"]["tokens"] and runs["dense"]["passes"] == runs["sparse"]["passes"]
        )
        mode = "reference_compat" if compat else "default"
        for p, r in runs.items():
            extra = ""
            if p == "sparse":
                d = runs["dense"]
                extra = (
                    f"{d['wall'] / r['wall']:>7.1f}x{d['cpu'] / r['cpu']:>7.1f}x"
                    f"{d['peak_mb'] / max(r['peak_mb'], 1e-9):>7.1f}x  {same}"
                )
            print(f"{mode:<18}{p:<8}{r['passes']:>7}{r['wall']:>9.2f}{r['cpu']:>9.2f}{r['peak_mb']:>9.0f}{extra}")


def memory(args: argparse.Namespace) -> None:
    print(f"thin real-vocab LLaDA, DAEDAL, batch {args.batch}, max_gen_length 512 from the start, {args.steps} steps")
    runs = {p: spawn(p, args, initial=512, max_gen_length=512, steps=args.steps) for p in ("dense", "sparse")}
    same = runs["dense"]["tokens"] == runs["sparse"]["tokens"]
    for p, r in runs.items():
        print(f"{p:<8} peak {r['peak_mb']:>8.0f} MB  wall {r['wall']:>7.2f} s  passes {r['passes']}")
    print(
        f"peak memory: {runs['dense']['peak_mb'] / max(runs['sparse']['peak_mb'], 1e-9):.1f}x lower; identical tokens: {same}"
    )


def cache(args: argparse.Namespace) -> None:
    from daedal.core import Engine
    from daedal.models import LLaDA, bundled
    from daedal.models.bundled import tasks
    from daedal.policies import Daedal, LLaDADecoding

    torch.set_num_threads(1)
    directory = Path(args.checkpoint) if args.checkpoint else bundled.path()
    adapter = LLaDA.from_pretrained(str(directory))
    data = tasks.heldout_set(args.per_family)
    settings = bundled.daedal_settings(directory)
    configs: list[tuple[str, str, object]] = []
    if "llada" in args.decoders:
        for block in args.block_lengths:
            for c in (None, "prefix", "dual"):
                configs.append(
                    (
                        f"llada{block}",
                        f"LLaDADecoding(64, 64, {block}, cache={c})",
                        LLaDADecoding(gen_length=64, steps=64, block_length=block, cache=c),
                    )
                )
    if "daedal" in args.decoders:
        for c in (None, "prefix", "dual"):
            configs.append(("daedal", f"Daedal(cache={c})", Daedal(**settings, cache=c)))
    print(f"checkpoint {directory}, {len(data)} held-out examples, batch {args.batch}, 1 thread")
    if "daedal" in args.decoders:
        print(f"Daedal settings (its daedal.json): {settings}")
    print(
        f"{'decoder':<40}{'wall s':>8}{'cpu s':>8}{'wall x':>8}{'cpu x':>8}{'exact %':>9}{'passes':>8}"
        f"{'calls':>7}{'fed/gen':>9}"
    )
    engines = [Engine(adapter, [policy]) for _, _, policy in configs]
    totals = [dict.fromkeys(("wall", "cpu", "passes", "calls", "fed", "generated", "correct"), 0.0) for _ in configs]
    # Batches outermost and the decoders side by side within each, so a change of the machine's
    # load hits every decoder alike; each run repeated, its fastest time kept (tokens are identical).
    for i in range(0, len(data), args.batch):
        chunk = data[i : i + args.batch]
        prompts = [d["prompt"] for d in chunk]
        for engine, total in zip(engines, totals, strict=True):
            walls, cpus = [], []
            for _ in range(args.repeat):
                c0 = time.process_time()
                result = engine.generate(prompts)
                cpus.append(time.process_time() - c0)
                walls.append(result.stats.wall_time)
            total["wall"] += min(walls)
            total["cpu"] += min(cpus)
            total["passes"] += result.stats.forward_passes
            total["calls"] += result.stats.model_calls
            total["fed"] += result.stats.canvas_tokens
            total["generated"] += result.stats.generated_tokens
            texts = result.texts or []
            total["correct"] += sum(tasks.score(d["family"], d["prompt"], t) for d, t in zip(chunk, texts, strict=True))
    base: dict[str, dict[str, float]] = {}
    for (family, name, _), t in zip(configs, totals, strict=True):
        b = base.setdefault(family, t)
        print(
            f"{name:<40}{t['wall']:>8.2f}{t['cpu']:>8.2f}{b['wall'] / t['wall']:>7.2f}x{b['cpu'] / t['cpu']:>7.2f}x"
            f"{100 * t['correct'] / len(data):>9.1f}{t['passes']:>8.0f}{t['calls']:>7.0f}"
            f"{t['fed'] / max(t['generated'], 1):>9.1f}"
        )
    print(
        f"wall x / cpu x: wall and CPU time against the same decoder without a cache, side by side in this run "
        f"(per batch the fastest of {args.repeat} runs); fed/gen: token positions the model processed per "
        "generated token; passes: forward passes and calls: model calls, both summed over batches"
    )


def oracle(args: argparse.Namespace) -> None:
    """Whether the answers a cache changes are Fast-dLLM's: the engine against the tests' per-row transcription."""
    sys.path.insert(0, str(ROOT))
    from tests.policies.oracles.cache_oracle import NativeOracle, cached_reference

    from daedal.core import Engine
    from daedal.models import LLaDA, bundled
    from daedal.models.bundled import tasks
    from daedal.policies import LLaDADecoding

    torch.set_num_threads(1)
    directory = Path(args.checkpoint) if args.checkpoint else bundled.path()
    adapter = LLaDA.from_pretrained(str(directory))
    data = tasks.heldout_set(args.per_family)
    ids = Engine(adapter, []).encode([d["prompt"] for d in data])
    print(f"checkpoint {directory}, {len(data)} held-out examples, LLaDADecoding(64, 64, block)")
    for block in args.block_lengths:
        plain = Engine(adapter, [LLaDADecoding(gen_length=64, steps=64, block_length=block)]).generate(ids)
        for mode in ("prefix", "dual"):
            policy = LLaDADecoding(gen_length=64, steps=64, block_length=block, cache=mode)
            cached = Engine(adapter, [policy]).generate(ids)
            changed = [i for i, (a, b) in enumerate(zip(plain.tokens, cached.tokens, strict=True)) if a != b]

            def right(result: Any, i: int) -> bool:
                return bool(tasks.score(data[i]["family"], data[i]["prompt"], (result.texts or [])[i]))

            lost = sum(right(plain, i) and not right(cached, i) for i in changed)
            won = sum(right(cached, i) and not right(plain, i) for i in changed)
            some = [ids[i] for i in changed[: args.oracle_rows]]
            same = True
            if some:
                result = Engine(adapter, [policy]).generate(some)
                want, passes = cached_reference(
                    NativeOracle(adapter), some, gen_length=64, block_length=block, mode=mode, steps=64
                )
                same = result.tokens == want and result.stats.forward_passes == max(passes)
            print(
                f"block {block:>2} {mode:<6}: the cache changed {len(changed)} answers (right -> wrong {lost}, "
                f"wrong -> right {won}); engine == per-row Fast-dLLM transcription on {len(some)} of them: {same}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["sparse", "memory", "cache", "oracle", "worker"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-gen-length", type=int, default=64)
    parser.add_argument("--initial", type=int, default=32)
    parser.add_argument("--steps", type=int, default=0, help="stop after this many steps (memory runs)")
    parser.add_argument("--per-family", type=int, default=16, help="held-out examples per task family (cache)")
    parser.add_argument(
        "--checkpoint", default=None, help="checkpoint directory (cache; default: the bundled tiny model)"
    )
    parser.add_argument(
        "--block-lengths", nargs="+", type=int, default=[16], help="LLaDADecoding block lengths (cache)"
    )
    parser.add_argument(
        "--decoders", nargs="+", default=["llada", "daedal"], choices=["llada", "daedal"], help="decoders (cache)"
    )
    parser.add_argument("--oracle-rows", type=int, default=6, help="changed answers checked per setting (oracle)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each batch; the fastest counts (cache)")
    parser.add_argument("--path", choices=["dense", "sparse"], default="sparse")
    parser.add_argument("--reference-compat", action="store_true")
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["reference", "default"],
        choices=["reference", "default"],
        help="DAEDAL modes of the sparse comparison",
    )
    args = parser.parse_args()
    if args.what == "memory" and not args.steps:
        args.steps = 4
    {"sparse": sparse, "memory": memory, "cache": cache, "oracle": oracle, "worker": worker}[args.what](args)


if __name__ == "__main__":
    main()
