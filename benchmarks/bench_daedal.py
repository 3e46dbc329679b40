"""Benchmark DAEDAL: the vectorised policies against the per-row oracle, batch 1 and 8.

For each model and batch size it prints forward passes, wall time, tokens/s and the time
spent outside the model forward (engine + policies, or the oracle's Python), checking that
both produce identical tokens (reference-compat mode, greedy).

Two models:

* ``toy``: the tests' table-lookup model (tests/policies/oracles/models.py) -- a forward
  pass costs almost nothing, so the numbers measure the decoding logic itself;
* ``tiny-llada``: a random tiny LLaDA from daedal-models (skipped if it is not installed),
  where the forward dominates and the engine's overhead should be a small fraction.

Run from the repository root::

    python benchmarks/bench_daedal.py            # both models
    python benchmarks/bench_daedal.py --models toy --vocab 2048
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.policies.oracles.daedal_oracle import daedal_reference  # noqa: E402
from tests.policies.oracles.models import toy_adapter  # noqa: E402

from daedal.core import Engine  # noqa: E402
from daedal.policies import Daedal  # noqa: E402

PARAMS = dict(
    initial_gen_length=32,
    max_gen_length=256,
    block_length=32,
    high_conf_threshold=0.9,
    low_conf_threshold=0.1,
    expansion_factor=8,
    eos_confidence_threshold=0.5,
    expand_eos_confidence_threshold=0.9,
    eos_check_tokens=32,
)


class Timed:
    """Wrap a logits function, summing the time spent in it."""

    def __init__(self, fn):
        self.fn = fn
        self.seconds = 0.0

    def __call__(self, tokens, length):
        t0 = time.perf_counter()
        out = self.fn(tokens, length)
        self.seconds += time.perf_counter() - t0
        return out


def toy(vocab: int):
    adapter = toy_adapter(vocab_size=vocab, seed=0, sharpness=1.5, eos_gain=6.0, eos_length=120.0, positions=4096)
    return adapter, adapter.logits_fn


def tiny_llada(vocab: int):
    try:
        from daedal.models import LLaDA
        from daedal.models.testing import tiny_checkpoint
    except Exception as err:  # daedal-models not installed or not ready
        print(f"tiny-llada skipped: {err}")
        return None
    directory = Path(tempfile.mkdtemp()) / "tiny-llada"
    tiny_checkpoint("llada", directory, n_layers=4, d_model=256, n_heads=8, mlp_hidden_size=512)
    adapter = LLaDA.from_pretrained(directory, dtype=torch.float32, device="cpu")
    return adapter, lambda tokens, length: adapter.logits(tokens, length)


def prompts_for(batch: int, vocab_hi: int) -> list[list[int]]:
    rng = random.Random(batch)
    return [[rng.randint(3, vocab_hi) for _ in range(rng.randint(8, 40))] for _ in range(batch)]


def run(name: str, adapter, logits_fn, batch: int, repeats: int) -> list[tuple]:
    prompts = prompts_for(batch, min(200, adapter.vocab_size - 2))
    engine = Engine(adapter, policies=[Daedal(**PARAMS, reference_compat=True)])
    engine.generate(prompts)  # warm-up
    best = None
    for _ in range(repeats):
        r = engine.generate(prompts)
        if best is None or r.stats.wall_time < best.stats.wall_time:
            best = r
    timed = Timed(logits_fn)
    t0 = time.perf_counter()
    expected, passes = daedal_reference(timed, prompts, mask_id=adapter.mask_id, eos_id=adapter.eos_id, **PARAMS)
    oracle_wall = time.perf_counter() - t0
    assert best.tokens == expected, "engine and oracle disagree"
    assert best.stats.forward_passes == passes
    tokens = sum(len(t) for t in best.tokens)
    s = best.stats
    return [
        (
            name,
            batch,
            "engine",
            s.forward_passes,
            s.wall_time,
            tokens / s.wall_time,
            s.overhead_time,
            s.overhead_time / s.wall_time,
        ),
        (
            name,
            batch,
            "oracle",
            passes,
            oracle_wall,
            tokens / oracle_wall,
            oracle_wall - timed.seconds,
            (oracle_wall - timed.seconds) / oracle_wall,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["toy", "tiny-llada"], choices=["toy", "tiny-llada"])
    parser.add_argument("--vocab", type=int, default=1024, help="vocabulary of the toy model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for model in args.models:
        built = toy(args.vocab) if model == "toy" else tiny_llada(args.vocab)
        if built is None:
            continue
        adapter, fn = built
        for batch in (1, 8):
            rows.extend(run(model, adapter, fn, batch, args.repeats))
    header = f"{'model':<11}{'batch':>6} {'impl':<7}{'passes':>7}{'wall s':>9}{'tok/s':>10}{'outside s':>11}{'outside %':>10}{'speed-up':>10}"
    print(header)
    print("-" * len(header))
    for i, (model, batch, impl, passes, wall, tps, outside, frac) in enumerate(rows):
        speed = f"{rows[i + 1][4] / wall:>9.1f}x" if impl == "engine" else ""
        print(
            f"{model:<11}{batch:>6} {impl:<7}{passes:>7}{wall:>9.3f}{tps:>10.1f}{outside:>11.3f}{frac * 100:>9.1f}%{speed:>10}"
        )
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), toy vocab {args.vocab}; identical tokens checked for every row"
    )


if __name__ == "__main__":
    main()
