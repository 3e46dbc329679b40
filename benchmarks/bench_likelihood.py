"""Variance and cost of the Monte-Carlo ELBO against ``mc_num``, on the bundled model.

For held-out (prompt, answer) pairs of the bundled tiny model with answers short enough
for the exact value (at most 12 tokens), it estimates each pair's log-likelihood with
``--seeds`` seeds at each ``mc_num`` and reports, averaged over the pairs:

* the spread (standard deviation) of the estimates over seeds, and the mean reported
  standard error (they should agree, the reported one a little larger: it ignores the
  stratification);
* the mean error against the exact value (the estimator is unbiased: it should be
  within noise of 0);
* CPU time per estimate (one thread; process time, so other load on the machine does
  not inflate it).

It prints a table and writes the plot ``docs/assets/likelihood-variance.png``. Run from
the repository root::

    python benchmarks/bench_likelihood.py            # about 2 CPU minutes
    python benchmarks/bench_likelihood.py --seeds 5 --mc-nums 8,32,128 --no-plot
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import torch

from daedal.eval.likelihood import log_likelihood
from daedal.models import bundled
from daedal.models.bundled import tasks

ROOT = Path(__file__).resolve().parents[1]
PLOT = ROOT / "docs" / "assets" / "likelihood-variance.png"


def pairs(adapter, n: int, max_tokens: int) -> list[tuple[str, list[int], list[int]]]:
    out = []
    for doc in tasks.heldout_set(25, seed=2024):
        if tasks.answer_tokens(doc["family"], doc["size"]) <= max_tokens and doc["size"] >= 2:
            prompt = adapter.encode([doc["prompt"]])[0]
            answer = adapter.encode([doc["answer"]], chat_template=False)[0]
            out.append((doc["prompt"], prompt, answer))
    step = max(1, len(out) // n)
    return out[::step][:n]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=8)
    p.add_argument("--seeds", type=int, default=24)
    p.add_argument("--mc-nums", default="1,2,4,8,16,32,64,128,256")
    p.add_argument("--max-tokens", type=int, default=12)
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    adapter = bundled.load()
    data = pairs(adapter, args.pairs, args.max_tokens)
    mc_nums = [int(v) for v in args.mc_nums.split(",")]
    exact = [float(log_likelihood(adapter, pr, an, exact=True)) for _, pr, an in data]
    print(
        f"{len(data)} pairs, answers of {sorted(len(a) for _, _, a in data)} tokens; "
        f"exact ELBO per pair: {', '.join(f'{e:.3f}' for e in exact)}"
    )
    print(f"{'mc_num':>7} {'spread':>9} {'reported se':>12} {'mean error':>11} {'CPU ms/estimate':>16}")
    rows = []
    for mc in mc_nums:
        batch = min(mc, 32)
        spreads, ses, errors, seconds = [], [], [], 0.0
        for (_, pr, an), ex in zip(data, exact, strict=True):
            values = []
            for seed in range(args.seeds):
                start = time.process_time()
                est = log_likelihood(adapter, pr, an, mc_num=mc, batch_size=batch, seed=seed)
                seconds += time.process_time() - start
                values.append(float(est))
                if math.isfinite(est.stderr):
                    ses.append(est.stderr)
            spreads.append(statistics.stdev(values))
            errors.append(statistics.fmean(values) - ex)
        row = {
            "mc_num": mc,
            "spread": statistics.fmean(spreads),
            "stderr": statistics.fmean(ses) if ses else float("nan"),
            "error": statistics.fmean(errors),
            "ms": 1000 * seconds / (len(data) * args.seeds),
        }
        rows.append(row)
        print(
            f"{mc:>7} {row['spread']:>9.4f} {row['stderr']:>12.4f} {row['error']:>+11.4f} {row['ms']:>16.1f}",
            flush=True,
        )
    if args.no_plot:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    xs = [r["mc_num"] for r in rows]
    left.loglog(xs, [r["spread"] for r in rows], "o-", label="spread over seeds (measured)")
    left.loglog(xs, [r["stderr"] for r in rows], "s--", label="reported standard error")
    anchor = min(rows, key=lambda r: abs(math.log(r["mc_num"] / 32)))  # the asymptotic regime
    ref = anchor["spread"] * math.sqrt(anchor["mc_num"])
    left.loglog(xs, [ref / math.sqrt(x) for x in xs], ":", color="grey", label=r"$\propto 1/\sqrt{mc\_num}$")
    left.set_xlabel("mc_num")
    left.set_ylabel("std. of the ELBO estimate (nats)")
    left.set_title("variance")
    left.legend(fontsize=8)
    right.loglog(xs, [r["ms"] for r in rows], "o-")
    right.set_xlabel("mc_num")
    right.set_ylabel("CPU ms per estimate (1 thread)")
    right.set_title("cost")
    fig.suptitle(
        f"Monte-Carlo ELBO on the bundled model ({len(data)} held-out pairs, {args.seeds} seeds each)", fontsize=10
    )
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=110)
    print(f"plot: {PLOT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
