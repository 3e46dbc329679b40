"""The ``daedal`` command line.

::

    daedal generate "reverse: q w e r t y u i o p"   # bundled tiny model, its recommended DAEDAL settings, CPU
    daedal generate --policy fixed-length:gen_length=32 --policy llada-schedule:steps=32 "repeat: x y"
    daedal generate --config run.yaml --seed 3        # a run config; flags override it
    daedal generate --print-config --policy daedal:initial_gen_length=16 "sort: d a c"
    daedal generate --model GSAI-ML/LLaDA-8B-Instruct --device cuda --dtype bfloat16 "..."
    daedal generate --trace run.jsonl "repeat: a b c" && daedal trace render run.jsonl --html run.html
    daedal policies [NAME] [--verbose]                # installed policies, their parameters
    daedal models                                     # adapters --adapter accepts, bundled checkpoints
    daedal --version

``--policy`` is repeatable and keeps its order (the first listed answers first); each
takes ``NAME`` or ``NAME:KEY=VALUE,...`` (:mod:`daedal.models.runconfig`, shared with
``daedal eval``). A list without a length policy or without a decoder is completed from
the checkpoint's recommended settings (its ``daedal.json``, :mod:`daedal.models.compose`),
and the completion is reported.

Further subcommands come from the ``daedal.commands`` entry-point group (e.g.
``daedal eval`` from daedal-eval): each entry point is ``register(subparsers)`` adding a
subparser whose ``func(args)`` returns the exit code. A plugin is imported only when its
command is named; the top-level help lists plugins by name without importing them.
``--help``, ``--version``, ``policies`` and ``models`` import neither torch nor any policy.

Exit codes: 0 success; 1 interrupted or an unexpected failure; 2 bad usage, unknown
policy, bad parameter, bad config; 3 missing or unusable checkpoint; 4 the run failed (a
policy broke an invariant). Errors print whole on stderr, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from daedal.models.runconfig import (
    GENERATE_SCHEMA,
    PolicySpec,
    dump_config,
    format_policy_spec,
    load_config,
    parse_assignments,
    parse_policy_spec,
    policy_specs_from_config,
)

__all__ = ["EXIT_CHECKPOINT", "EXIT_RUN", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_CHECKPOINT, EXIT_RUN = 0, 1, 2, 3, 4
PROG = "daedal"
DISTRIBUTIONS = ("daedal-core", "daedal-policies", "daedal-models", "daedal-eval")
BUILTIN = ("generate", "trace", "policies", "models")


class CLIError(Exception):
    """An error message (printed whole) with its exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


# ------------------------------------------------------------------------------ entry points
# Listed through importlib.metadata directly: daedal.core.registry would import daedal.core,
# hence torch, and listing must stay instant.

GROUPS = {"policies": "daedal.policies", "adapters": "daedal.adapters", "commands": "daedal.commands"}


_SCAN: tuple[tuple[str, ...], Any] | None = None


def _entry_points(group: str) -> Any:
    """One scan of the installed distributions per ``sys.path`` (each scan costs ~20 ms)."""
    global _SCAN
    if _SCAN is None or _SCAN[0] != tuple(sys.path):
        _SCAN = (tuple(sys.path), metadata.entry_points())
    return _SCAN[1].select(group=group)


def _available(kind: str) -> dict[str, tuple[str, str | None]]:
    """Installed entry points of a kind: name -> (target, distribution). Imports nothing."""
    found: dict[str, tuple[str, str | None]] = {}
    for ep in _entry_points(GROUPS[kind]):
        dist = getattr(getattr(ep, "dist", None), "name", None)
        found.setdefault(ep.name, (ep.value, dist))
    return dict(sorted(found.items()))


def _load_command(name: str) -> Any:
    from daedal.core import registry

    return registry.load("commands", name)


def _version_text() -> str:
    parts = []
    for dist in DISTRIBUTIONS:
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return f"{PROG} {metadata.version('daedal-models')} ({', '.join(parts)})"


class _Version(argparse.Action):
    """``--version`` printed as is (argparse's own action re-wraps the text)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        print(_version_text())
        parser.exit()


# ------------------------------------------------------------------------------ parser


def build_parser(commands: Sequence[str] = (), stubs: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The argument parser.

    Args:
        commands: ``daedal.commands`` entry points to import and register.
        stubs: Plugin commands to list in the help by name only (not imported).
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Variable-length denoising for masked diffusion language models (DAEDAL).",
        epilog="Run 'daedal generate \"reverse: a b c\"' to try the bundled tiny model.",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="print the installed daedal versions and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    gen = sub.add_parser(
        "generate",
        help="denoise prompts (default: bundled tiny model, its recommended DAEDAL settings, CPU)",
        description="Denoise one or more prompts and print the results. Policies run in the order given; "
        "a missing length policy or decoder is filled in from the checkpoint's recommended "
        "settings (daedal.json).",
    )
    gen.add_argument("prompts", nargs="*", metavar="PROMPT", help="prompt text (one user turn each)")
    gen.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="run config (YAML or JSON: model, adapter, policies, seed, dtype, device, prompts); flags override it",
    )
    gen.add_argument(
        "--print-config",
        action="store_true",
        help="print the run config this command line amounts to (JSON, also valid YAML) and exit",
    )
    gen.add_argument(
        "--model", default=None, help="checkpoint directory, bundled name or hub id (default: the bundled tiny model)"
    )
    gen.add_argument(
        "--adapter", default=None, help="adapter name from 'daedal models' (default: from the checkpoint's config.json)"
    )
    gen.add_argument(
        "--policy",
        action="append",
        default=None,
        metavar="SPEC",
        dest="policies",
        help="policy NAME or NAME:KEY=VALUE,... from 'daedal policies'; repeatable, in order "
        "(default: the checkpoint's recommended policies; a recommended policy named here "
        "starts from its recommended parameters)",
    )
    gen.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="assignments",
        help="parameter of the last --policy (of the recommended policy without one); repeatable",
    )
    gen.add_argument("--seed", type=int, default=None, help="engine seed (default: 0)")
    gen.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cpu)")
    gen.add_argument("--dtype", default=None, help="auto, float32, bfloat16, float16 (default: auto)")
    gen.add_argument("--json", action="store_true", help="print the results, lengths, statistics and warnings as JSON")
    gen.add_argument(
        "--trace",
        type=Path,
        default=None,
        metavar="PATH",
        help="record the step trace to this JSONL file (its directory must exist)",
    )
    gen.add_argument(
        "--live",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw the canvas while it denoises (default: when stdout is a terminal)",
    )
    gen.add_argument(
        "--delay", type=float, default=0.05, help="seconds to pause per drawn step in the live view (default: 0.05)"
    )
    gen.add_argument("--raw", action="store_true", help="print the generation with its end-of-text tokens")
    gen.set_defaults(func=_generate)

    trace = sub.add_parser("trace", help="work with recorded traces", description="Work with recorded traces.")
    tsub = trace.add_subparsers(dest="trace_command", metavar="ACTION")
    render = tsub.add_parser(
        "render",
        help="replay a trace as a self-contained HTML page",
        description="Replay a trace (from 'daedal generate --trace') as an HTML page.",
    )
    render.add_argument("trace", type=Path, help="trace JSONL file")
    render.add_argument(
        "--html", type=Path, required=True, metavar="OUT", help="HTML file to write (its directory must exist)"
    )
    render.add_argument("--title", default=None)
    render.set_defaults(func=_trace_render)
    trace.set_defaults(func=lambda args: _missing_action(trace))

    pol = sub.add_parser(
        "policies",
        help="list installed policies; NAME or --verbose: their parameters",
        description="List the installed policies (without importing them); with NAME or "
        "--verbose, each policy's summary and parameters with types and defaults.",
    )
    pol.add_argument("names", nargs="*", metavar="NAME", help="policies to describe")
    pol.add_argument("--verbose", "-v", action="store_true", help="describe every policy (imports them)")
    pol.add_argument("--json", action="store_true")
    pol.set_defaults(func=_policies)
    mod = sub.add_parser(
        "models",
        help="list the adapters --adapter accepts and the bundled checkpoints",
        description="List the model adapters that 'daedal generate --adapter' accepts and the "
        "bundled checkpoints, without loading them.",
    )
    mod.add_argument("--json", action="store_true")
    mod.set_defaults(func=_models)

    for name in commands:
        _register_command(sub, name)
    available = _available("commands")
    for name in stubs:
        if name not in commands:
            dist = available.get(name, ("", None))[1]
            sub.add_parser(name, help=f"from {dist or 'a plugin'}; see 'daedal {name} --help'", add_help=False)
    return parser


def _missing_action(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: choose an action (render)", file=sys.stderr)
    return EXIT_USAGE


def _register_command(sub: Any, name: str) -> None:
    try:
        register = _load_command(name)
        register(sub)
    except Exception as exc:  # a broken plugin must not break the rest of the CLI
        print(f"{PROG}: warning: command {name!r} could not be loaded: {exc}", file=sys.stderr)


def _plugin_commands(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(plugin commands to import, plugin commands to list by name) for this command line."""
    names = [n for n in _available("commands") if n not in BUILTIN]
    first = next((a for a in argv if not a.startswith("-")), None)
    if first in names:
        return [first], []
    return [], names


# ------------------------------------------------------------------------------ listings


def _policies(args: argparse.Namespace) -> int:
    found = _available("policies")
    unknown = [n for n in args.names if n not in found]
    if unknown:
        raise CLIError(f"{', '.join(map(repr, unknown))}: not an installed policy; choose from {sorted(found)}")
    if args.names or args.verbose:
        from daedal.models.compose import describe_policy

        described = [describe_policy(n) for n in (args.names or found)]
        if args.json:
            print(json.dumps(described, indent=1, default=repr))
            return EXIT_OK
        for i, d in enumerate(described):
            if i:
                print()
            print(f"{d['name']}  ({d['target']})")
            if d["summary"]:
                print(f"  {d['summary']}")
            if not d["parameters"]:
                print("  no parameters")
            for p in d["parameters"]:
                print(
                    f"  {p['name']}: {p['type']} (required)"
                    if p["required"]
                    else f"  {p['name']}: {p['type']} = {p['default']!r}"
                )
                if p["description"]:
                    print(f"      {p['description']}")
        return EXIT_OK
    if args.json:
        print(json.dumps({n: {"target": t, "distribution": d} for n, (t, d) in found.items()}, indent=1))
        return EXIT_OK
    if not found:
        print("no policies installed (pip install -e packages/daedal-policies)")
        return EXIT_OK
    width = max(len(n) for n in found)
    for name, (target, dist) in found.items():
        print(f"{name:<{width}}  {target}  ({dist or '?'})")
    return EXIT_OK


def _bundled_checkpoints() -> dict[str, str]:
    import daedal.models.bundled as bundled

    root = Path(bundled.__file__).resolve().parent
    if not root.is_dir():
        return {}
    return {p.name: str(p) for p in sorted(root.iterdir()) if (p / "config.json").is_file()}


def _checkpoint_adapters() -> tuple[dict[str, tuple[str, str | None]], dict[str, tuple[str, str | None]]]:
    """(adapters ``--adapter`` accepts, other adapter entry points), without importing them.

    ``--adapter`` loads checkpoints, so it takes adapter *classes* (``module:Class``, which
    must have ``from_pretrained``); functions such as the bundled model's loader
    (``daedal.models.bundled:load``) and test adapters (``...testing...``) are for Python.
    """
    accepted, other = {}, {}
    for name, (target, dist) in _available("adapters").items():
        module, _, attr = target.partition(":")
        is_class = attr[:1].isupper()
        testing = ".testing" in f".{module}"
        (accepted if is_class and not testing else other)[name] = (target, dist)
    return accepted, other


def _models(args: argparse.Namespace) -> int:
    accepted, other = _checkpoint_adapters()
    checkpoints = _bundled_checkpoints()
    if args.json:
        print(
            json.dumps(
                {
                    "adapters": {n: {"target": t, "distribution": d} for n, (t, d) in accepted.items()},
                    "python_only": {n: {"target": t, "distribution": d} for n, (t, d) in other.items()},
                    "bundled": checkpoints,
                },
                indent=1,
            )
        )
        return EXIT_OK
    print("adapters (daedal generate --adapter NAME):")
    width = max((len(n) for n in accepted), default=0)
    for name, (target, dist) in accepted.items():
        print(f"  {name:<{width}}  {target}  ({dist or '?'})")
    print("bundled checkpoints (daedal generate --model NAME):")
    for name, path in checkpoints.items():
        print(f"  {name}  {path}")
    if other:
        print("other adapter entry points (Python only: a loader function or a test adapter):")
        width = max(len(n) for n in other)
        for name, (target, dist) in other.items():
            print(f"  {name:<{width}}  {target}  ({dist or '?'})")
    return EXIT_OK


# ------------------------------------------------------------------------------ generate: the run


def _resolve_run(args: argparse.Namespace) -> dict[str, Any]:
    """The run this command line amounts to: config file first, flags over it (imports no torch)."""
    run: dict[str, Any] = {
        "model": None,
        "adapter": None,
        "policies": [],
        "seed": 0,
        "dtype": "auto",
        "device": "cpu",
        "prompts": [],
    }
    if args.config is not None:
        config = load_config(args.config, GENERATE_SCHEMA)
        for key, value in config.data.items():
            run[key] = value
        run["policies"] = policy_specs_from_config(config)
    for key in ("model", "adapter", "seed", "dtype", "device"):
        value = getattr(args, key)
        if value is not None:
            run[key] = value
    if args.policies:
        run["policies"] = [parse_policy_spec(text) for text in args.policies]
    if args.prompts:
        run["prompts"] = list(args.prompts)
    if not run["prompts"]:
        raise CLIError(
            'no PROMPT given; pass one or more prompts, e.g. daedal generate "reverse: a b c" '
            "(or 'prompts' in the --config file)"
        )
    for i, prompt in enumerate(run["prompts"]):
        if not prompt.strip():
            raise CLIError(f'prompt {i + 1} is empty; give the model something to answer, e.g. "reverse: a b c"')
    return run


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
            raise CLIError(
                f"--model {model!r} is a directory without config.json; pass a checkpoint directory", EXIT_CHECKPOINT
            )
        return model, path
    hub_like = model.count("/") == 1 and not model.startswith((".", "/", "~")) and not path.exists()
    if not hub_like:
        raise CLIError(
            f"--model {model!r}: no checkpoint directory there; pass an existing checkpoint directory, "
            f"a bundled name ({', '.join(bundled_dirs) or 'none installed'}) or a hub id (owner/name)",
            EXIT_CHECKPOINT,
        )
    return model, None


def _adapter_class(name: str | None, directory: Path | None) -> Any:
    from daedal.core import registry

    if name is None:
        name = "llada"  # a hub id: nothing to read before downloading
        if directory is not None:
            try:
                kind = str(json.loads((directory / "config.json").read_text(encoding="utf-8")).get("model_type", ""))
            except (OSError, ValueError) as exc:
                raise CLIError(
                    f"--model {str(directory)!r}: config.json is unreadable: {exc}", EXIT_CHECKPOINT
                ) from exc
            found = registry.adapter_for_model_type(kind)
            if found is None:
                declared = ", ".join(f"{n}: {list(t)}" for n, t in registry.declared_model_types().items())
                raise CLIError(
                    f"--model {str(directory)!r}: no installed adapter loads model_type {kind!r} "
                    f"(declared: {declared or 'none'}); pass --adapter NAME",
                    EXIT_CHECKPOINT,
                )
            name = found
    accepted, _ = _checkpoint_adapters()
    if name not in accepted:
        raise CLIError(
            f"--adapter {name!r} is not an installed adapter; choose one of {sorted(accepted)} (see 'daedal models')"
        )
    cls = registry.load("adapters", name)
    if not hasattr(cls, "from_pretrained"):
        raise CLIError(f"--adapter {name!r} cannot load checkpoints (it has no from_pretrained)")
    return cls


def _compose(run: dict[str, Any], assignments: dict[str, Any], directory: Path | None) -> Any:
    from daedal.models.compose import build_policies

    known = _available("policies")
    for spec in run["policies"]:
        if spec.name not in known:
            raise CLIError(
                f"--policy {spec.name!r} is not an installed policy; choose one of {sorted(known)} "
                "(see 'daedal policies')"
            )
    return build_policies(*_requested_specs(run, assignments, directory))


def _requested_specs(
    run: dict[str, Any], assignments: dict[str, Any], directory: Path | None
) -> tuple[list[PolicySpec], list[PolicySpec]]:
    """The specs the command line asks for (``--set`` on the last) and the checkpoint's recommended ones; torch-free."""
    from daedal.models.compose import recommended_specs

    recommended = recommended_specs(directory) or [PolicySpec("daedal")]
    specs = [PolicySpec(s.name, s.params) for s in run["policies"]]
    if assignments:
        if not specs:
            specs = [PolicySpec(s.name, s.params) for s in recommended]
        specs[-1].params.update(assignments)
    return specs, recommended


def _run_config(run: dict[str, Any], composition: Any) -> dict[str, Any]:
    return {
        "model": run["model"],
        "adapter": run["adapter"],
        "policies": [format_policy_spec(s) for s in composition.specs],
        "seed": run["seed"],
        "dtype": run["dtype"],
        "device": run["device"],
        "prompts": list(run["prompts"]),
    }


def _clean(adapter: Any, tokens: Sequence[int]) -> str:
    """The generation up to its first end-of-text token, decoded."""
    ends = _end_ids(adapter)
    cut = next((i for i, t in enumerate(tokens) if t in ends or t == adapter.mask_id), len(tokens))
    return adapter.decode([list(tokens[:cut])])[0].strip()


def _end_ids(adapter: Any) -> set[int]:
    return set(getattr(adapter, "eos_ids", ()) or ()) | {getattr(adapter, "eos_id", adapter.pad_id)}


def _unknown_pieces(adapter: Any, prompt: str) -> list[str]:
    """Pieces of a prompt the tokenizer maps to its unknown token."""
    tok = getattr(adapter, "tokenizer", None)
    if tok is None:
        return []
    if hasattr(tok, "words_unknown"):
        return list(tok.words_unknown(prompt))
    unk = getattr(tok, "unk_token_id", None)
    if unk is None:
        return []
    try:
        enc = tok(prompt, add_special_tokens=False, return_offsets_mapping=True)
    except Exception:  # a slow tokenizer without offsets: count only
        ids = tok.encode(prompt, add_special_tokens=False)
        return [tok.unk_token] * sum(1 for i in ids if i == unk)
    return [prompt[a:b] for i, (a, b) in zip(enc["input_ids"], enc["offset_mapping"], strict=False) if i == unk]


def _prompt_warnings(adapter: Any, prompts: Sequence[str], directory: Path | None) -> tuple[list[str], list[list[str]]]:
    warnings: list[str] = []
    unknown = [_unknown_pieces(adapter, p) for p in prompts]
    for i, pieces in enumerate(unknown):
        if pieces:
            warnings.append(
                f"prompt {i + 1} has {len(pieces)} piece(s) the tokenizer does not know, read as its "
                f"unknown token: {', '.join(map(repr, pieces))}"
            )
    if directory is not None and str(directory.resolve()) in _bundled_checkpoints().values():
        from daedal.models.bundled import tasks

        for i, prompt in enumerate(prompts):
            problem = tasks.check_prompt(prompt)
            if problem:
                warnings.append(
                    f"prompt {i + 1} ({prompt!r}) is not one of the bundled model's tasks ({problem}); "
                    "expect an arbitrary answer"
                )
    return warnings, unknown


def _truncated(adapter: Any, result: Any) -> list[bool]:
    """Per row: the generation filled its canvas without an end-of-text token (likely cut)."""
    ends = _end_ids(adapter)
    return [not any(t in ends for t in row) for row in result.tokens]


def _check_output_path(path: Path | None, option: str) -> None:
    if path is None:
        return
    parent = path.expanduser().parent
    if not parent.is_dir():
        raise CLIError(
            f"{option} {str(path)!r}: the directory {str(parent)!r} does not exist; create it first "
            "(daedal does not create directories) or pick an existing one"
        )


def _generate(args: argparse.Namespace) -> int:
    run = _resolve_run(args)
    assignments = parse_assignments(args.assignments)
    _check_output_path(args.trace, "--trace")
    live = (sys.stdout.isatty() if args.live is None else args.live) and not args.json and not args.print_config
    name, directory = _resolve_model(run["model"])
    preview = None
    if live:  # the first thing on screen; importing torch and loading take a moment
        print(f"loading {name} ({run['device']}) ...", flush=True)
        preview = _start_preview(run, assignments, directory)
    try:
        return _generate_run(args, run, assignments, name, directory, live, preview)
    finally:
        if preview is not None:  # still on screen if the run failed before drawing
            preview.stop()


def _start_preview(run: dict[str, Any], assignments: dict[str, Any], directory: Path | None) -> Any:
    """The initial canvas, drawn before torch is imported (None when its size is not known yet)."""
    from daedal.models.viz.preview import initial_length, start_preview

    length = initial_length(*_requested_specs(run, assignments, directory))
    if length is None:
        return None
    from rich.console import Console

    return start_preview(Console(), list(run["prompts"]), length)


def _generate_run(
    args: argparse.Namespace,
    run: dict[str, Any],
    assignments: dict[str, Any],
    name: str,
    directory: Path | None,
    live: bool,
    preview: Any,
) -> int:
    composition = _compose(run, assignments, directory)
    if args.print_config:
        sys.stdout.write(dump_config(_run_config(run, composition)))
        return EXIT_OK
    if composition.filled and run["policies"]:
        given = ", ".join(format_policy_spec(s) for s in run["policies"])
        added = ", ".join(s.name for s in composition.filled)
        print(
            f"{PROG}: note: {given} leaves roles open; filled in from {name}'s recommended settings: {added}",
            file=sys.stderr,
        )
    cls = _adapter_class(run["adapter"], directory)

    import torch

    from daedal.core import Engine, EngineConfig

    adapter = cls.from_pretrained(
        str(directory) if directory is not None else name, dtype=run["dtype"], device=run["device"]
    )
    prompts = list(run["prompts"])
    warnings, unknown = _prompt_warnings(adapter, prompts, directory)
    for message in warnings:
        if not args.json:
            warn(message)
    policies: list[Any] = list(composition.policies)
    view = None
    if live:
        from daedal.models.viz.live import LiveView

        view = LiveView(delay=max(0.0, args.delay), prompts=prompts, live=preview)
        policies.append(view)
    engine = Engine(adapter, policies=policies, config=EngineConfig(seed=run["seed"], record=args.trace is not None))
    try:
        with torch.inference_mode():
            result = engine.generate(prompts)
    finally:
        if view is not None:
            view.close()
    texts = [_clean(adapter, t) for t in result.tokens]
    raw = result.texts or adapter.decode(result.tokens)
    cut = _truncated(adapter, result)
    for i, is_cut in enumerate(cut):
        if is_cut:
            message = (
                f"prompt {i + 1} filled all {result.lengths[i]} generation slots without an end-of-text "
                "token: the answer is probably cut; raise max_gen_length (or gen_length)"
            )
            warnings.append(message)
            if not args.json:
                warn(message)
    specs = [format_policy_spec(s) for s in composition.specs]
    if args.trace is not None:
        _write_trace(args.trace, adapter, result, name, specs, run["seed"], prompts)
    if args.json:
        stats = {
            k: getattr(result.stats, k)
            for k in (
                "forward_passes",
                "model_calls",
                "steps",
                "canvas_tokens",
                "generated_tokens",
                "effective_tokens",
                "expansions",
                "wall_time",
                "model_time",
            )
        }
        stats["effective_ratio"] = result.stats.effective_ratio
        print(
            json.dumps(
                {
                    "model": name,
                    "policies": specs,
                    "filled_in": [format_policy_spec(s) for s in composition.filled],
                    "seed": run["seed"],
                    "results": [
                        {
                            "prompt": p,
                            "text": t,
                            "raw": r,
                            "tokens": toks,
                            "length": n,
                            "hit_max_length": c,
                            "unknown": u,
                        }
                        for p, t, r, toks, n, c, u in zip(
                            prompts, texts, raw, result.tokens, result.lengths, cut, unknown, strict=False
                        )
                    ],
                    "stats": stats,
                    "warnings": warnings,
                    "info": _jsonable(result.info),
                    "config": _run_config(run, composition),
                    "trace": str(args.trace) if args.trace is not None else None,
                },
                indent=1,
            )
        )
        return EXIT_OK
    for text, r in zip(texts, raw, strict=False):
        print(r if args.raw else text)
    if view is not None:
        s = result.stats
        print(
            f"[{s.forward_passes} forward passes, {s.steps} steps, lengths {result.lengths}, {s.wall_time:.2f}s]",
            file=sys.stderr,
        )
    return EXIT_OK


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def _write_trace(
    path: Path, adapter: Any, result: Any, name: str, specs: list[str], seed: int, prompts: list[str]
) -> None:
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
        "policy": " ".join(f"--policy {s}" for s in specs),
        "policies": specs,
        "seed": seed,
        "prompts": prompts,
        "mask_id": adapter.mask_id,
        "eos_ids": sorted(getattr(adapter, "eos_ids", ()) or ()),
        "strings": {str(k): v for k, v in token_strings(adapter, ids).items()},
    }
    with path.open("w", encoding="utf-8") as fh:
        for event in (header, *trace.events):
            fh.write(json.dumps(event) + "\n")


def _trace_render(args: argparse.Namespace) -> int:
    from daedal.core.events import Trace
    from daedal.models.viz.html import render_html

    if not args.trace.is_file():
        raise CLIError(f"trace {str(args.trace)!r} does not exist; record one with 'daedal generate --trace PATH'")
    _check_output_path(args.html, "--html")
    try:
        trace = Trace.from_jsonl(args.trace)
    except (ValueError, OSError) as exc:
        raise CLIError(f"trace {str(args.trace)!r} is not a JSONL trace: {exc}") from exc
    if not trace.of_kind("step-finished") and not trace.of_kind("canvas-initialized"):
        raise CLIError(f"trace {str(args.trace)!r} holds no canvas events; record one with 'daedal generate --trace'")
    page = render_html(trace, title=args.title or f"daedal trace: {args.trace.name}")
    args.html.write_text(page, encoding="utf-8")
    steps = trace.of_kind("step-finished")
    insertions = sum(len(row) for e in steps for row in e.get("expanded") or ())
    print(f"wrote {args.html} ({_count(len(steps), 'step')}, {_count(insertions, 'stage-2 insertion')})")
    return EXIT_OK


# ------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        commands, stubs = _plugin_commands(argv)
        parser = build_parser(commands, stubs)
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # argparse: --help / --version (0) or a usage error (2)
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
    except Exception as err:  # noqa: BLE001 - mapped to a message and an exit code
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
    message = str(err).strip() or type(err).__name__  # whole: advice often follows the first line
    print(f"{PROG}: error: {message}", file=sys.stderr)
    if os.environ.get("DAEDAL_DEBUG") and code != EXIT_FAIL:
        raise err
    return code


if __name__ == "__main__":
    raise SystemExit(main())
