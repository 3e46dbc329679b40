"""The ``daedal`` command line.

::

    daedal generate "reverse: a b c d e f g"         # bundled tiny model, DAEDAL, CPU
    daedal generate --model GSAI-ML/LLaDA-8B-Instruct --device cuda --dtype bfloat16 "..."
    daedal generate --policy daedal --set initial_gen_length=16 --json "sort: 3 1 2"
    daedal generate --trace run.jsonl "repeat: a b c"
    daedal trace render run.jsonl --html run.html
    daedal policies                                   # installed policies (entry points)
    daedal models                                     # installed adapters and bundled checkpoints

Further subcommands come from the ``daedal.commands`` entry-point group (e.g.
``daedal eval`` from daedal-eval): each entry point is ``register(subparsers)`` adding a
subparser whose ``func(args)`` returns the exit code. They are imported only when named
on the command line or when the help is printed, so listing stays light.

Exit codes: 0 success; 1 interrupted or an unexpected failure; 2 bad usage, unknown
policy, bad parameter; 3 missing or unusable checkpoint; 4 the run failed (a policy
broke an invariant). Errors print one line on stderr, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["EXIT_CHECKPOINT", "EXIT_RUN", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_CHECKPOINT, EXIT_RUN = 0, 1, 2, 3, 4
PROG = "daedal"


class CLIError(Exception):
    """A one-line error with its exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------------ parser


def build_parser(commands: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The argument parser; ``commands`` are ``daedal.commands`` entry points to register."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Variable-length denoising for masked diffusion language models (DAEDAL).",
        epilog="Run 'daedal generate \"reverse: a b c\"' to try the bundled tiny model.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    gen = sub.add_parser("generate", help="denoise prompts (default: bundled tiny model, DAEDAL, CPU)",
                         description="Denoise one or more prompts and print the results.")
    gen.add_argument("prompts", nargs="+", metavar="PROMPT", help="prompt text (one user turn each)")
    gen.add_argument("--model", default=None,
                     help="checkpoint directory or hub id (default: the bundled tiny model)")
    gen.add_argument("--adapter", default=None,
                     help="adapter name from 'daedal models' (default: from the checkpoint's config.json, else llada)")
    gen.add_argument("--policy", default="daedal", help="policy name from 'daedal policies' (default: daedal)")
    gen.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                     help="policy parameter, repeatable (e.g. --set initial_gen_length=16)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default: cpu)")
    gen.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16 (default: auto)")
    gen.add_argument("--json", action="store_true", help="print the results, lengths and statistics as JSON")
    gen.add_argument("--trace", type=Path, default=None, metavar="PATH",
                     help="record the step trace to this JSONL file")
    gen.add_argument("--live", action=argparse.BooleanOptionalAction, default=None,
                     help="draw the canvas while it denoises (default: when stdout is a terminal)")
    gen.add_argument("--delay", type=float, default=0.05,
                     help="seconds to pause per drawn step in the live view (default: 0.05)")
    gen.add_argument("--raw", action="store_true", help="print the generation with its end-of-text tokens")
    gen.set_defaults(func=_generate)

    trace = sub.add_parser("trace", help="work with recorded traces", description="Work with recorded traces.")
    tsub = trace.add_subparsers(dest="trace_command", metavar="ACTION")
    render = tsub.add_parser("render", help="replay a trace as a self-contained HTML page",
                             description="Replay a trace (from 'daedal generate --trace') as an HTML page.")
    render.add_argument("trace", type=Path, help="trace JSONL file")
    render.add_argument("--html", type=Path, required=True, metavar="OUT", help="HTML file to write")
    render.add_argument("--title", default=None)
    render.set_defaults(func=_trace_render)
    trace.set_defaults(func=lambda args: _missing_action(trace))

    pol = sub.add_parser("policies", help="list installed policies (entry points)",
                         description="List the installed policies without importing them.")
    pol.add_argument("--json", action="store_true")
    pol.set_defaults(func=_policies)
    mod = sub.add_parser("models", help="list installed adapters and bundled checkpoints",
                         description="List installed model adapters and bundled checkpoints without loading them.")
    mod.add_argument("--json", action="store_true")
    mod.set_defaults(func=_models)

    for name in commands:
        _register_command(sub, name)
    return parser


def _missing_action(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: choose an action (render)", file=sys.stderr)
    return EXIT_USAGE


def _register_command(sub: Any, name: str) -> None:
    from daedal.core import registry

    try:
        register = registry.load("commands", name)
        register(sub)
    except Exception as exc:  # a broken plugin must not break the rest of the CLI
        print(f"{PROG}: warning: command {name!r} could not be loaded: {exc}", file=sys.stderr)


def _plugin_commands(argv: Sequence[str]) -> list[str]:
    """The ``daedal.commands`` entry points this command line needs (all for help)."""
    from daedal.core import registry

    names = list(registry.available("commands"))
    builtin = {"generate", "trace", "policies", "models"}
    names = [n for n in names if n not in builtin]
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is None or any(a in ("-h", "--help") for a in argv[:1]):
        return names
    return [n for n in names if n == first]


# ------------------------------------------------------------------------------ commands


def _policies(args: argparse.Namespace) -> int:
    from daedal.core import registry

    found = registry.available("policies")
    if args.json:
        print(json.dumps({n: {"target": a.target, "distribution": a.distribution} for n, a in found.items()}, indent=1))
        return EXIT_OK
    if not found:
        print("no policies installed (pip install daedal-policies)")
        return EXIT_OK
    width = max(len(n) for n in found)
    for name, entry in found.items():
        print(f"{name:<{width}}  {entry.target}  ({entry.distribution or '?'})")
    return EXIT_OK


def _bundled_checkpoints() -> dict[str, str]:
    import daedal.models.bundled as bundled

    root = Path(bundled.__file__).resolve().parent
    return {p.name: str(p) for p in sorted(root.iterdir()) if (p / "config.json").is_file()}


def _models(args: argparse.Namespace) -> int:
    from daedal.core import registry

    adapters = registry.available("adapters")
    checkpoints = _bundled_checkpoints()
    if args.json:
        print(json.dumps({
            "adapters": {n: {"target": a.target, "distribution": a.distribution} for n, a in adapters.items()},
            "bundled": checkpoints,
        }, indent=1))
        return EXIT_OK
    print("adapters:")
    width = max((len(n) for n in adapters), default=0)
    for name, entry in adapters.items():
        print(f"  {name:<{width}}  {entry.target}  ({entry.distribution or '?'})")
    print("bundled checkpoints (daedal generate --model NAME_OR_PATH):")
    for name, path in checkpoints.items():
        print(f"  {name}  {path}")
    return EXIT_OK


def _resolve_model(model: str | None) -> tuple[str, Path | None]:
    """(what to load, local directory or None for a hub id)."""
    if model is None:
        from daedal.models import bundled

        return bundled.NAME, bundled.path()
    bundled_dirs = _bundled_checkpoints()
    if model in bundled_dirs:
        return model, Path(bundled_dirs[model])
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CLIError(f"--model {model!r} is a directory without config.json; pass a checkpoint directory",
                           EXIT_CHECKPOINT)
        return model, path
    hub_like = model.count("/") == 1 and not model.startswith((".", "/", "~")) and not path.exists()
    if not hub_like:
        raise CLIError(f"--model {model!r}: no checkpoint directory there; pass an existing checkpoint directory, "
                       f"a bundled name ({', '.join(bundled_dirs) or 'none installed'}) or a hub id (owner/name)",
                       EXIT_CHECKPOINT)
    return model, None


def _adapter_class(name: str | None, directory: Path | None) -> Any:
    from daedal.core import registry

    if name is None:
        name = "llada"  # a hub id: nothing to read before downloading
        if directory is not None:
            try:
                kind = str(json.loads((directory / "config.json").read_text(encoding="utf-8")).get("model_type", ""))
            except (OSError, ValueError) as exc:
                raise CLIError(f"--model {str(directory)!r}: config.json is unreadable: {exc}", EXIT_CHECKPOINT) from exc
            found = registry.adapter_for_model_type(kind)
            if found is None:
                declared = ", ".join(f"{n}: {list(t)}" for n, t in registry.declared_model_types().items())
                raise CLIError(f"--model {str(directory)!r}: no installed adapter loads model_type {kind!r} "
                               f"(declared: {declared or 'none'}); pass --adapter NAME", EXIT_CHECKPOINT)
            name = found
    available = registry.available("adapters")
    if name not in available or name == "tiny":
        choices = sorted(n for n in available if n != "tiny")
        raise CLIError(f"--adapter {name!r} is not an installed adapter; choose one of {choices}")
    cls = registry.load("adapters", name)
    if not hasattr(cls, "from_pretrained"):
        raise CLIError(f"--adapter {name!r} cannot load checkpoints (it has no from_pretrained)")
    return cls


def _policy(args: argparse.Namespace, directory: Path | None) -> tuple[Any, dict[str, Any]]:
    from daedal.core import registry

    params = registry.parse_assignments(args.assignments)
    if args.policy == "daedal" and directory is not None:
        from daedal.models import bundled

        params = {**bundled.daedal_settings(directory), **params}
    return registry.create("policies", args.policy, params), params


def _clean(adapter: Any, tokens: Sequence[int]) -> str:
    """The generation up to its first end-of-text token, decoded."""
    ends = set(getattr(adapter, "eos_ids", ()) or ()) | {getattr(adapter, "eos_id", adapter.pad_id)}
    cut = next((i for i, t in enumerate(tokens) if t in ends or t == adapter.mask_id), len(tokens))
    return adapter.decode([list(tokens[:cut])])[0].strip()


def _generate(args: argparse.Namespace) -> int:
    import torch

    from daedal.core import Engine, EngineConfig, registry

    policies_available = registry.available("policies")
    if args.policy not in policies_available:
        raise CLIError(f"--policy {args.policy!r} is not an installed policy; choose one of "
                       f"{sorted(policies_available)} (see 'daedal policies')")
    name, directory = _resolve_model(args.model)
    cls = _adapter_class(args.adapter, directory)
    policy, params = _policy(args, directory)
    adapter = cls.from_pretrained(str(directory) if directory is not None else name, dtype=args.dtype,
                                  device=args.device)
    live = sys.stdout.isatty() if args.live is None else args.live
    policies: list[Any] = [policy]
    view = None
    if live and not args.json:
        from daedal.models.viz.live import LiveView

        view = LiveView(delay=max(0.0, args.delay), prompts=list(args.prompts))
        policies.append(view)
    engine = Engine(adapter, policies=policies, config=EngineConfig(seed=args.seed, record=args.trace is not None))
    try:
        with torch.inference_mode():
            result = engine.generate(list(args.prompts))
    finally:
        if view is not None:
            view.close()
    texts = [_clean(adapter, t) for t in result.tokens]
    raw = result.texts or adapter.decode(result.tokens)
    if args.trace is not None:
        _write_trace(args, adapter, result, name, params)
    if args.json:
        stats = {k: getattr(result.stats, k) for k in (
            "forward_passes", "steps", "canvas_tokens", "generated_tokens", "effective_tokens", "expansions",
            "wall_time", "model_time")}
        stats["effective_ratio"] = result.stats.effective_ratio
        print(json.dumps({
            "model": name, "policy": args.policy, "params": params, "seed": args.seed,
            "results": [
                {"prompt": p, "text": t, "raw": r, "tokens": toks, "length": n}
                for p, t, r, toks, n in zip(args.prompts, texts, raw, result.tokens, result.lengths, strict=False)
            ],
            "stats": stats,
            "info": _jsonable(result.info),
            "trace": str(args.trace) if args.trace is not None else None,
        }, indent=1))
        return EXIT_OK
    for text, r in zip(texts, raw, strict=False):
        print(r if args.raw else text)
    if view is not None:
        s = result.stats
        print(f"[{s.forward_passes} forward passes, {s.steps} steps, lengths {result.lengths}, "
              f"{s.wall_time:.2f}s]", file=sys.stderr)
    return EXIT_OK


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def _write_trace(args: argparse.Namespace, adapter: Any, result: Any, name: str, params: dict[str, Any]) -> None:
    from daedal.models.viz.frames import VOCAB_KIND, token_strings

    trace = result.trace
    ids: set[int] = set()
    for e in trace.events:
        for row in e.get("rows", []) + e.get("prompts", []):
            ids.update(row)
        for row in e.get("filled", []):
            ids.update(t for _, t, _ in row)
    header = {
        "kind": VOCAB_KIND,
        "model": name,
        "policy": args.policy,
        "params": params,
        "seed": args.seed,
        "prompts": list(args.prompts),
        "mask_id": adapter.mask_id,
        "eos_ids": sorted(getattr(adapter, "eos_ids", ()) or ()),
        "strings": {str(k): v for k, v in token_strings(adapter, ids).items()},
    }
    args.trace.parent.mkdir(parents=True, exist_ok=True)
    with args.trace.open("w", encoding="utf-8") as fh:
        for event in (header, *trace.events):
            fh.write(json.dumps(event) + "\n")


def _trace_render(args: argparse.Namespace) -> int:
    from daedal.core.events import Trace
    from daedal.models.viz.html import render_html

    if not args.trace.is_file():
        raise CLIError(f"trace {str(args.trace)!r} does not exist; record one with 'daedal generate --trace PATH'")
    try:
        trace = Trace.from_jsonl(args.trace)
    except (ValueError, OSError) as exc:
        raise CLIError(f"trace {str(args.trace)!r} is not a JSONL trace: {exc}") from exc
    if not trace.of_kind("step-finished") and not trace.of_kind("canvas-initialized"):
        raise CLIError(f"trace {str(args.trace)!r} holds no canvas events; record one with 'daedal generate --trace'")
    page = render_html(trace, title=args.title or f"daedal trace: {args.trace.name}")
    args.html.parent.mkdir(parents=True, exist_ok=True)
    args.html.write_text(page, encoding="utf-8")
    steps = len(trace.of_kind("step-finished"))
    print(f"wrote {args.html} ({steps} steps)")
    return EXIT_OK


# ------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(_plugin_commands(argv))
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
            return int(exc.code or 0)
        if getattr(args, "func", None) is None:
            parser.print_help()
            return EXIT_USAGE
        return int(args.func(args) or 0)
    except CLIError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return err.code
    except BrokenPipeError:  # e.g. `daedal generate ... | head`
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_FAIL
    except Exception as err:  # noqa: BLE001 - mapped to one line and an exit code
        return _report(err)


def _report(err: Exception) -> int:
    from daedal.core.errors import AdapterError, CanvasError, DaedalError, PluginError, PolicyError

    if isinstance(err, AdapterError):
        code = EXIT_CHECKPOINT
    elif isinstance(err, (PolicyError, CanvasError)):
        code = EXIT_RUN
    elif isinstance(err, (DaedalError, PluginError, ValueError, LookupError)):
        code = EXIT_USAGE
    elif isinstance(err, (FileNotFoundError, OSError)):
        code = EXIT_CHECKPOINT
    else:
        if os.environ.get("DAEDAL_DEBUG"):
            raise err
        code = EXIT_FAIL
    message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    print(f"{PROG}: error: {message}", file=sys.stderr)
    if os.environ.get("DAEDAL_DEBUG") and code != EXIT_FAIL:
        raise err
    return code


if __name__ == "__main__":
    raise SystemExit(main())
