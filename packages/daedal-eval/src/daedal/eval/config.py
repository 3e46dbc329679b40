"""Run configs of ``daedal eval run``, ``sweep``, ``paper`` and ``ppl``: files, flags over them, manifests that rerun.

A config is a mapping (YAML or JSON, read by :func:`daedal.models.runconfig.load_config`)
with one key per option of the command, named like the option with underscores
(``--batch-size`` is ``batch_size``); the repeatable ``KEY=VALUE`` options are mappings
(``suite_args``, ``adapter_args``, ``daedal_args``; ``paper``'s ``data`` maps suite to file)
and ``policies`` is a list of policy specs in the form ``daedal generate`` takes. The safety
and display flags ``--overwrite``, ``--unsafe-exec`` and ``--no-progress`` are never read
from a file.

:func:`resolve` turns a parsed command line into the full config: defaults, then the
``--config`` file, then the flags given. Specs come out complete (``daedal`` with the
checkpoint's recommended parameters merged in), so a printed config reruns the same run
even when the checkpoint's ``daedal.json`` changes later.

Every run directory's ``manifest.json`` holds the ``eval run`` config of its run under
``"config"`` (a sweep's or grid's cell as its own ``eval run``), and ``--config`` accepts
such a manifest (or the run directory): it reruns the run into that directory, or into
``--output`` when given. A paper directory's ``paper.json`` holds the ``eval paper``
config the same way, a sweep directory's ``sweep-config.json`` the ``eval sweep`` config.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from daedal.core.errors import ConfigError
from daedal.models.runconfig import (
    ConfigFile,
    PolicySpec,
    check_config,
    format_policy_spec,
    load_config,
    parse_policy_spec,
    policy_specs_from_config,
)

__all__ = ["COMMANDS", "RECORD_KEY", "SCHEMAS", "cell_config", "defaults", "load_eval_config", "resolve"]

#: The subcommands that take ``--config``.
COMMANDS = ("run", "sweep", "paper", "ppl")
#: The key under which manifests (and ``paper.json``) hold their config.
RECORD_KEY = "config"

Check = tuple[Callable[[Any], bool], str]


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _str(v: Any) -> bool:
    return isinstance(v, str) and bool(v)


def _opt_str(v: Any) -> bool:
    return v is None or isinstance(v, str)


def _mapping(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) for k in v)


def _lengths(v: Any) -> bool:
    return v is None or (isinstance(v, list) and all(_int(n) and n >= 1 for n in v))


def _spec(v: Any) -> bool:
    return v is None or isinstance(v, str) or (isinstance(v, dict) and len(v) == 1)


_COMMON_SUITE: dict[str, Check] = {
    "limit": (lambda v: v is None or (_int(v) and v >= 1), "a positive integer (only the first N problems) or null"),
    "protocol": (lambda v: v in (None, "default", "paper"), "default, paper or null (the suite's default)"),
    "suite_args": (_mapping, "a mapping of suite parameters, e.g. {timeout: 5}"),
}
_COMMON_MODEL: dict[str, Check] = {
    "model": (_str, "a checkpoint directory, hub id, 'bundled' or 'fake' (a string)"),
    "adapter": (_opt_str, "an adapter name (a string), or null for the checkpoint's"),
    "adapter_args": (_mapping, "a mapping of adapter parameters"),
    "dtype": (_opt_str, "a dtype such as bfloat16, or null for the adapter's"),
    "device": (_opt_str, "a device such as cuda or cpu, or null"),
}
_COMMON_RUN: dict[str, Check] = {
    "seed": (lambda v: _int(v) and v >= 0, "a non-negative integer"),
    "batch_size": (lambda v: _int(v) and v >= 1, "a positive integer"),
    "output": (_str, "the run directory (a string)"),
}
_COMMAND: Check = (lambda v: v in COMMANDS, f"one of {', '.join(COMMANDS)} (the subcommand the config is for)")
_GRID: dict[str, Check] = {
    "lengths": (_lengths, "a list of positive integers (baseline lengths), or null for the default"),
    "block_length": (lambda v: _int(v) and v >= 1, "a positive integer"),
}

#: Allowed keys of each command's config, in the order a printed config lists them.
SCHEMAS: dict[str, dict[str, Check]] = {
    "run": {
        "command": _COMMAND,
        "suite": (_str, "a suite name from 'daedal eval suites'"),
        "data": (_opt_str, "a local .jsonl(.gz) file of the suite, or null for the hub data"),
        **_COMMON_SUITE,
        **_COMMON_MODEL,
        "policies": (
            lambda v: isinstance(v, list) and bool(v),
            "a non-empty list of policy specs ('name', 'name:key=value,...' or {name: {key: value}})",
        ),
        **_COMMON_RUN,
    },
    "sweep": {
        "command": _COMMAND,
        "suite": (_str, "a suite name from 'daedal eval suites'"),
        "data": (_opt_str, "a local .jsonl(.gz) file of the suite, or null for the hub data"),
        **_COMMON_SUITE,
        **_COMMON_MODEL,
        **_GRID,
        "daedal": (_spec, "the DAEDAL run's policy spec ('daedal:key=value,...'), or null for the baseline only"),
        "reference_compat": (lambda v: isinstance(v, bool), "true or false"),
        **_COMMON_RUN,
    },
    "paper": {
        "command": _COMMAND,
        "suites": (
            lambda v: isinstance(v, list) and bool(v) and all(_str(s) for s in v),
            "a non-empty list of suite names",
        ),
        "data": (
            lambda v: _mapping(v) and all(isinstance(p, str) for p in v.values()),
            "a mapping of suite name to local .jsonl(.gz) file",
        ),
        **_COMMON_SUITE,
        **_COMMON_MODEL,
        **_GRID,
        "daedal_args": (_mapping, "a mapping of DAEDAL parameters over the checkpoint's recommended settings"),
        "reference_compat": (lambda v: isinstance(v, bool), "true or false"),
        "temperature": (lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)), "a number"),
        **_COMMON_RUN,
    },
    "ppl": {
        "command": _COMMAND,
        "data": (_str, "a .txt or .jsonl(.gz) file (a string)"),
        "limit": _COMMON_SUITE["limit"],
        "text_field": (_str, "a JSONL field name"),
        "prompt_field": (_str, "a JSONL field name"),
        "answer_field": (_str, "a JSONL field name"),
        "chat_template": (lambda v: isinstance(v, bool), "true or false"),
        **_COMMON_MODEL,
        "mc_num": (lambda v: _int(v) and v >= 1, "a positive integer"),
        "cfg_scale": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
        "exact": (lambda v: isinstance(v, bool), "true or false"),
        "window": (lambda v: v is None or (_int(v) and v >= 1), "a positive integer, or null for the default"),
        "context": (lambda v: v is None or (_int(v) and v >= 0), "a non-negative integer, or null for the default"),
        **_COMMON_RUN,
    },
}


class _AnyKey(dict):  # type: ignore[type-arg]
    """A schema that takes every key (its listed keys are the command's, for messages)."""

    def __contains__(self, key: object) -> bool:
        return key != RECORD_KEY  # a record's config key stays the record's

    def __getitem__(self, key: str) -> Check:
        return _COMMAND if key == "command" else (lambda v: True, "")


_REQUIRED = {
    "suite": "--suite NAME",
    "suites": "--suite NAME",
    "data": "--data FILE",
    "model": "--model MODEL",
    "output": "--output DIR",
}


def _sweep_lengths() -> list[int]:
    from daedal.eval.sweep import PAPER_LENGTHS

    return list(PAPER_LENGTHS)


def defaults(command: str) -> dict[str, Any]:
    """A command's config before any file or flag (None where a value is required)."""
    values: dict[str, Any] = {
        "command": command,
        "suite": None,
        "suites": None,
        "data": {} if command == "paper" else None,
        "limit": None,
        "protocol": None,
        "suite_args": {},
        "model": None,
        "adapter": None,
        "adapter_args": {},
        "dtype": None,
        "device": None,
        "policies": ["daedal"],
        "lengths": _sweep_lengths() if command == "sweep" else None,
        "block_length": 32,
        "daedal": "daedal",
        "daedal_args": {},
        "reference_compat": False,
        "temperature": None,
        "seed": 0,
        "batch_size": 32 if command == "ppl" else 1,
        "output": None,
        "text_field": "text",
        "prompt_field": "prompt",
        "answer_field": "answer",
        "chat_template": True,
        "mc_num": 128,
        "cfg_scale": 0.0,
        "exact": False,
        "window": None,
        "context": None,
    }
    return {key: values[key] for key in SCHEMAS[command]}


def load_eval_config(path: str | Path, command: str) -> ConfigFile:
    """Read ``--config``: a YAML/JSON config, a record (``manifest.json``, ``paper.json``,
    ``sweep-config.json``) or the directory holding one.

    A record gives the config it holds, with ``output`` set to the directory the record
    is in (so a moved run directory still reruns into itself).

    Raises:
        ConfigError: See :func:`~daedal.models.runconfig.load_config`; also a config of
            another subcommand.
    """
    file = Path(path)
    if file.is_dir():
        records = ("manifest.json", "paper.json", "sweep-config.json")
        found = [file / name for name in records if (file / name).is_file()]
        if not found:
            raise ConfigError(
                f"--config {str(path)!r} is a directory without {', '.join(records)}; pass a config "
                "file, a run's manifest.json or a run, sweep or paper directory"
            )
        file = found[0]
    if _manifest_without_config(file):
        raise ConfigError(
            f"--config {str(file)!r} is a run manifest without a {RECORD_KEY!r} key (written by an older daedal "
            "or by run_suite without config=): it cannot rerun itself; pass the run's options as flags"
        )
    # the command first, so that another command's config is named as such, then the keys
    config = load_config(file, _AnyKey(SCHEMAS[command]), record_key=RECORD_KEY)
    wanted = config.data.get("command", command)
    if wanted != command:
        raise config.error(
            "command",
            f"this is a config of 'daedal eval {wanted}', not of 'daedal eval {command}'; "
            f"run it with daedal eval {wanted} --config {file}",
        )
    check_config(config, SCHEMAS[command])
    if config.section is not None:
        config.data = {**config.data, "output": str(file.parent)}
    return config


def _manifest_without_config(file: Path) -> bool:
    if file.suffix.lower() in (".yaml", ".yml") or not file.is_file():
        return False
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # load_config reports it
    return isinstance(data, dict) and "format" in data and "suite" in data and RECORD_KEY not in data


def _assignments(items: Sequence[str], option: str) -> dict[str, Any]:
    from daedal.models.runconfig import parse_assignments

    return parse_assignments(items, option, example="timeout=5")


def _data_mapping(items: Sequence[str]) -> dict[str, str]:
    data: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"--data {item!r} must be SUITE=PATH, e.g. gsm8k=data/gsm8k.jsonl")
        data[name.strip()] = path.strip()
    return data


def _one_spec(value: Any, config: ConfigFile | None, key: str) -> str | None:
    """A single spec (``sweep``'s ``daedal``) from a file value or a flag, as spec text."""
    if value is None:
        return None
    if isinstance(value, dict):
        probe = ConfigFile(config.path if config else Path(key), {key: [value]}, config.lines if config else {})
        return format_policy_spec(policy_specs_from_config(probe, key)[0])
    try:
        return format_policy_spec(parse_policy_spec(value, argument=f"--{key}"))
    except ConfigError as err:
        if config is not None:
            raise config.error(key, str(err)) from err
        raise


def _model_defaults(model: str) -> dict[str, Any]:
    from daedal.eval.build import model_daedal_defaults

    return model_daedal_defaults(model)


def _complete(spec: PolicySpec, daedal_defaults: Callable[[], Mapping[str, Any]]) -> PolicySpec:
    """``daedal`` with the recommended parameters it does not set (what ``build_policies`` would use)."""
    if spec.name != "daedal":
        return spec
    return PolicySpec(spec.name, {**daedal_defaults(), **spec.params})


def resolve(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The config a parsed ``eval run/sweep/paper/ppl`` command line amounts to.

    Defaults first, then the ``--config`` file, then every flag that was given.

    Raises:
        ConfigError: A bad file, a missing required value or a malformed spec.
    """
    cfg = defaults(command)
    file: ConfigFile | None = None
    if getattr(args, "config", None) is not None:
        file = load_eval_config(args.config, command)
        cfg.update(file.data)
        if "policies" in file.data:
            cfg["policies"] = [format_policy_spec(s) for s in policy_specs_from_config(file)]
        if "daedal" in file.data:
            cfg["daedal"] = _one_spec(file.data["daedal"], file, "daedal")
        if "lengths" in file.data and command == "sweep" and file.data["lengths"] is None:
            cfg["lengths"] = _sweep_lengths()
    cfg["command"] = command
    for key in ("limit", "protocol", "model", "adapter", "dtype", "device", "seed", "batch_size", "output"):
        value = getattr(args, key, None)
        if value is not None:
            cfg[key] = value
    cfg["adapter_args"] = {**cfg["adapter_args"], **_assignments(args.adapter_arg or [], "--adapter-arg")}
    if command == "ppl":
        _ppl_flags(cfg, args)
    else:
        cfg["suite_args"] = {**cfg["suite_args"], **_assignments(args.suite_arg or [], "--suite-arg")}
    if command == "paper":
        if args.suites:
            cfg["suites"] = list(args.suites)
        cfg["data"] = {**cfg["data"], **_data_mapping(args.data or [])}
        cfg["daedal_args"] = {**cfg["daedal_args"], **_assignments(args.daedal_arg or [], "--daedal-arg")}
        if args.temperature is not None:
            cfg["temperature"] = args.temperature
    elif command in ("run", "sweep"):
        if args.suite is not None:
            cfg["suite"] = args.suite
        if args.data is not None:
            cfg["data"] = args.data
    if command == "run" and args.policy:
        cfg["policies"] = [format_policy_spec(parse_policy_spec(text)) for text in args.policy]
    if command in ("sweep", "paper"):
        for key in ("lengths", "block_length"):
            if getattr(args, key) is not None:
                cfg[key] = list(args.lengths) if key == "lengths" else args.block_length
        if args.reference_compat:
            cfg["reference_compat"] = True
    if command == "sweep":
        if args.daedal is not None:
            cfg["daedal"] = _one_spec(args.daedal, None, "daedal")
        if args.no_daedal:
            cfg["daedal"] = None
    for key, flag in _REQUIRED.items():
        if key in cfg and not cfg[key] and (key != "data" or command == "ppl"):
            raise ConfigError(
                f"{flag.split()[0]} is missing: pass {flag} or put {key!r} in the --config file "
                f"(daedal eval {command} --help lists the options)"
            )
    unknown = sorted(set(cfg["data"]) - set(cfg["suites"])) if command == "paper" else []
    if unknown:
        raise ConfigError(f"--data names suites {unknown} that no --suite asks for ({cfg['suites']})")
    _complete_specs(cfg, command)
    return cfg


def _ppl_flags(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    for key in ("data", "text_field", "prompt_field", "answer_field", "mc_num", "cfg_scale", "window", "context"):
        value = getattr(args, key, None)
        if value is not None:
            cfg[key] = value
    if args.exact:
        cfg["exact"] = True
    if args.no_chat_template:
        cfg["chat_template"] = False


def _complete_specs(cfg: dict[str, Any], command: str) -> None:
    cache: dict[str, Mapping[str, Any]] = {}

    def recommended() -> Mapping[str, Any]:
        if "d" not in cache:
            cache["d"] = _model_defaults(cfg["model"])
        return cache["d"]

    if command == "run":
        cfg["policies"] = [format_policy_spec(_complete(parse_policy_spec(s), recommended)) for s in cfg["policies"]]
    elif command == "sweep" and cfg["daedal"] is not None:
        spec = parse_policy_spec(cfg["daedal"])
        if spec.name == "daedal" and cfg["reference_compat"]:
            spec = PolicySpec(spec.name, {"reference_compat": True, **spec.params})
        cfg["daedal"] = format_policy_spec(_complete(spec, recommended))
    elif command == "paper":
        cfg["daedal_args"] = {**recommended(), **cfg["daedal_args"]}


def cell_config(
    config: Mapping[str, Any], *, suite: str, policies: Sequence[str], output: str | Path
) -> dict[str, Any]:
    """The ``eval run`` config of one cell of a sweep or grid (its suite, policies and directory)."""
    data = config.get("data")
    run = defaults("run")
    for key in run:
        if key in config:
            run[key] = config[key]
    run.update(
        {
            "command": "run",
            "suite": suite,
            "data": data.get(suite) if isinstance(data, dict) else data,
            "policies": list(policies),
            "output": str(output),
        }
    )
    return run
