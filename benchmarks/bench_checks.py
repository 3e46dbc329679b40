"""Benchmark the engine's per-step checks and per-row random streams at LLaDA's vocabulary.

Prints milliseconds per call, on ``[B, T, V]`` fp32 logits (default ``V = 126,464``,
LLaDA-8B's vocabulary):

* ``argmax`` -- the greedy proposal before the checks (``logits.argmax(-1)``);
* ``max (argmax + peak)`` -- what ``Prediction.greedy`` runs now: one ``max`` reduction gives
  the argmax and the peak the finiteness check reads;
* ``finiteness check on the peak`` -- the engine's check itself (``[B, T]`` work, one sync);
* ``isfinite(logits).all()`` -- a separate full pass, the check the engine avoids;
* ``torch.rand`` and ``row streams`` -- the noise of one Gumbel-max draw: the batch stream
  against the per-row counter-based streams (float32 and float64).

Run from the repository root::

    python benchmarks/bench_checks.py
    python benchmarks/bench_checks.py --batch 2 --width 128 --vocab 126464 --repeats 5
"""

from __future__ import annotations

import argparse
import time

import torch

from daedal.core.streams import RowStreams, row_seeds


def _ms(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=126_464)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    b, t, v = args.batch, args.width, args.vocab
    logits = torch.randn(b, t, v, generator=torch.Generator().manual_seed(0))
    valid = torch.ones(b, t, dtype=torch.bool)
    peak = logits.amax(-1)
    streams = RowStreams(torch.tensor(row_seeds(0, b)))
    g = torch.Generator().manual_seed(0)

    def check() -> None:
        broken = ~torch.isfinite(peak) & valid
        torch.stack([broken.any(), broken.any()]).tolist()

    rows = [
        ("argmax", lambda: logits.argmax(-1)),
        ("max (argmax + peak)", lambda: logits.max(-1)),
        ("finiteness check on the peak", check),
        ("isfinite(logits).all()", lambda: bool(torch.isfinite(logits).all())),
        ("torch.rand float32", lambda: torch.rand(logits.shape, generator=g)),
        ("row streams float32", lambda: streams.uniform(logits.shape)),
        ("torch.rand float64", lambda: torch.rand(logits.shape, generator=g, dtype=torch.float64)),
        ("row streams float64", lambda: streams.uniform(logits.shape, dtype=torch.float64)),
    ]
    print(f"logits [{b}, {t}, {v}] fp32, {args.threads} thread(s), best of {args.repeats}")
    for name, fn in rows:
        print(f"  {name:<32} {_ms(fn, args.repeats):9.2f} ms")


if __name__ == "__main__":
    main()
