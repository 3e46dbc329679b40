"""Run configurations shared by ``daedal generate`` and ``daedal eval``.

Two things live here:

* **Policy specs**, the one syntax both commands use for ``--policy``:
  ``NAME`` or ``NAME:KEY=VALUE,KEY=VALUE`` (values read like ``--set``: JSON numbers,
  booleans, ``null``, lists in brackets, else a string), e.g.
  ``fixed-length:gen_length=8,max_gen_length=48``. :func:`parse_policy_spec` reads one,
  :func:`format_policy_spec` writes one back.
* **Config files** (YAML or JSON): :func:`load_config` reads a mapping, checks every key
  against a schema and reports a mistake with the key, the file and its line
  (``run.yaml:3: unknown key 'sed'; known keys: ...``).

Only the standard library (and PyYAML for ``.yaml`` files) is imported here, so the
command line can read configs before it imports torch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "ConfigFile",
    "GENERATE_SCHEMA",
    "PolicySpec",
    "check_config",
    "dump_config",
    "format_policy_spec",
    "load_config",
    "parse_assignments",
    "parse_policy_spec",
    "parse_value",
    "policy_specs_from_config",
]


def _config_error(message: str) -> Exception:
    from daedal.core.errors import ConfigError  # imported on error only: daedal.core loads torch

    return ConfigError(message)


def parse_value(text: str) -> Any:
    """A parameter value: JSON when it parses (numbers, booleans, lists), ``none``/``null``, else the string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items: Sequence[str], option: str = "--set", example: str = "threshold=0.9") -> dict[str, Any]:
    """``["a=1", "b-c=x"]`` as ``{"a": 1, "b_c": "x"}`` (values by :func:`parse_value`).

    Raises:
        ConfigError: An item without ``=`` or without a key, naming ``option``.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise _config_error(f"{option} takes KEY=VALUE, got {item!r}: write e.g. {option} {example}")
        out[key.strip().replace("-", "_")] = parse_value(value)
    return out


class PolicySpec:
    """One ``--policy`` entry: a registered policy name and its parameters."""

    __slots__ = ("name", "params")

    def __init__(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.params = dict(params or {})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PolicySpec) and (self.name, self.params) == (other.name, other.params)

    def __repr__(self) -> str:
        return f"PolicySpec({format_policy_spec(self)!r})"

    def to_config(self) -> Any:
        """The config-file form: the name alone, or ``{name: {params}}``."""
        return self.name if not self.params else {self.name: dict(self.params)}


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets, braces and quotes (so ``ids=[1,2]`` stays whole)."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def parse_policy_spec(text: str, *, argument: str = "--policy") -> PolicySpec:
    """Read ``NAME`` or ``NAME:KEY=VALUE,...`` (dashes in keys become underscores).

    Raises:
        ConfigError: An empty name, a parameter without ``=``, or a key given twice.
    """
    name, sep, rest = str(text).strip().partition(":")
    name = name.strip()
    if not _NAME.match(name):
        raise _config_error(
            f"{argument} {text!r}: start with a policy name from 'daedal policies', then optionally "
            "':key=value,key=value', e.g. --policy fixed-length:gen_length=8,max_gen_length=48"
        )
    params: dict[str, Any] = {}
    if sep and rest.strip():
        for item in _split_top_level(rest):
            key, eq, value = item.partition("=")
            key = key.strip().replace("-", "_")
            if not eq or not key:
                raise _config_error(
                    f"{argument} {text!r}: parameter {item.strip()!r} is not key=value; write e.g. "
                    f"{name}:{key or 'threshold'}=0.9"
                )
            if key in params:
                raise _config_error(f"{argument} {text!r}: parameter {key!r} is given twice; keep one")
            params[key] = parse_value(value.strip())
    return PolicySpec(name, params)


def _format_value(value: Any) -> str:
    if isinstance(value, str) and parse_value(value) == value and "," not in value:
        return value
    return json.dumps(value)


def format_policy_spec(spec: PolicySpec) -> str:
    """The ``--policy`` text of a spec (``parse_policy_spec`` reads it back unchanged)."""
    if not spec.params:
        return spec.name
    return spec.name + ":" + ",".join(f"{k}={_format_value(v)}" for k, v in spec.params.items())


# ------------------------------------------------------------------------------ config files


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _opt_str(v: Any) -> bool:
    return v is None or isinstance(v, str)


def _prompts(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(p, str) for p in v)


def _policies(v: Any) -> bool:
    return isinstance(v, list)


#: ``daedal generate``'s config keys: key -> (check, what the value must be).
GENERATE_SCHEMA: dict[str, tuple[Callable[[Any], bool], str]] = {
    "model": (_opt_str, "a checkpoint directory, bundled name or hub id (a string), or null"),
    "adapter": (_opt_str, "an adapter name from 'daedal models' (a string), or null"),
    "policies": (_policies, "a list of policy specs ('name' or 'name:key=value,...' or {name: {key: value}})"),
    "seed": (_is_int, "an integer"),
    "dtype": (lambda v: isinstance(v, str), "auto, float32, bfloat16 or float16"),
    "device": (lambda v: isinstance(v, str), "cpu, cuda, cuda:1, ..."),
    "prompts": (_prompts, "a list of prompt strings"),
}


class ConfigFile:
    """A loaded config file: its values and where each key stands.

    Attributes:
        path: The file.
        data: The top-level mapping.
        lines: Key -> 1-based line of the key (``"policies.1"`` for list items where
            known).
        section: The key of the record the config was read from (see ``record_key`` of
            :func:`load_config`), else None.
    """

    def __init__(self, path: Path, data: dict[str, Any], lines: dict[str, int], section: str | None = None) -> None:
        self.path = path
        self.data = data
        self.lines = lines
        self.section = section

    def where(self, key: str) -> str:
        """``file:line`` of a key (or of its parent key, else the file alone)."""
        probe = key
        while probe:
            if probe in self.lines:
                return f"{self.path}:{self.lines[probe]}"
            probe = probe.rpartition(".")[0]
        return str(self.path)

    def error(self, key: str, message: str) -> Exception:
        """A ConfigError naming the file, the line and the key."""
        return _config_error(f"{self.where(key)}: {message}")


def _yaml_lines(text: str, section: str | None = None) -> dict[str, int]:
    import yaml

    lines: dict[str, int] = {}
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lines
    if root is not None and section is not None and isinstance(root, yaml.MappingNode):
        root = next((v for k, v in root.value if str(k.value) == section), None)
    if root is None or not isinstance(root, yaml.MappingNode):
        return lines
    for key_node, value_node in root.value:
        key = str(key_node.value)
        lines[key] = key_node.start_mark.line + 1
        if isinstance(value_node, yaml.SequenceNode):
            for i, item in enumerate(value_node.value):
                lines[f"{key}.{i}"] = item.start_mark.line + 1
    return lines


def _json_lines(text: str, data: Mapping[str, Any], section: str | None = None) -> dict[str, int]:
    lines: dict[str, int] = {}
    rows = text.splitlines()
    start = 0
    if section is not None:  # the keys of a nested mapping: search from the line of its key on
        start = _json_lines(text, {section: None}).get(section, 1) - 1
    for key in data:
        pattern = re.compile(r"^\s*[{,]?\s*" + re.escape(json.dumps(key)) + r"\s*:")
        for n, row in enumerate(rows[start:], start=start + 1):
            if pattern.search(row):
                lines[key] = n
                break
    return lines


def load_config(
    path: str | Path,
    schema: Mapping[str, tuple[Callable[[Any], bool], str]] = GENERATE_SCHEMA,
    *,
    argument: str = "--config",
    record_key: str | None = None,
) -> ConfigFile:
    """Read a YAML (``.yaml``/``.yml``) or JSON config file and check its keys.

    Args:
        path: The file.
        schema: Allowed keys: key -> (check, description of a valid value).
        argument: The option name for messages.
        record_key: When the file is a record that holds its config as a mapping under
            this key (an eval run's ``manifest.json`` under ``"config"``), that mapping is
            the config; the record's other keys are not checked.

    Raises:
        ConfigError: Missing or unreadable file, not a mapping, an unknown key or a bad
            value; the message names the file, the line and the key.
    """
    file = Path(path)
    if not file.is_file():
        raise _config_error(f"{argument} {str(path)!r}: no such file; pass a YAML or JSON config file")
    text = file.read_text(encoding="utf-8")
    yaml_file = file.suffix.lower() in (".yaml", ".yml")
    try:
        if yaml_file:
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _config_error(f"{file}:{exc.lineno}: not valid JSON ({exc.msg}); fix the file") from exc
    except Exception as exc:  # yaml.YAMLError, whose marks carry the line
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise _config_error(f"{file}{line}: not valid YAML ({getattr(exc, 'problem', exc)}); fix the file") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _config_error(
            f"{file}: a config file holds a mapping of keys ({', '.join(schema)}), not a {type(data).__name__}"
        )
    section = None
    if record_key is not None and record_key not in schema and isinstance(data.get(record_key), dict):
        section, data = record_key, data[record_key]
    lines = _yaml_lines(text, section) if yaml_file else _json_lines(text, data, section)
    config = ConfigFile(file, data, lines, section)
    check_config(config, schema)
    return config


def check_config(config: ConfigFile, schema: Mapping[str, tuple[Callable[[Any], bool], str]]) -> None:
    """Check every key of a loaded config against ``schema``.

    Raises:
        ConfigError: An unknown key or a bad value, naming the file, the line and the key.
    """
    for key, value in config.data.items():
        if key not in schema:
            raise config.error(str(key), f"unknown key {key!r}; known keys: {', '.join(schema)}")
        check, wanted = schema[key]
        if not check(value):
            raise config.error(str(key), f"key {key!r} is {value!r}; it must be {wanted}")


def policy_specs_from_config(config: ConfigFile, key: str = "policies") -> list[PolicySpec]:
    """The ``policies`` list of a config as specs, in order.

    Each item is a spec string (``"fixed-length:gen_length=8"``), a name with a
    parameter mapping (``{"fixed-length": {"gen_length": 8}}``) or
    ``{"name": ..., "params": {...}}``.
    """
    specs: list[PolicySpec] = []
    for i, item in enumerate(config.data.get(key) or []):
        where = f"{key}.{i}"
        if isinstance(item, str):
            try:
                specs.append(parse_policy_spec(item, argument=f"{key}[{i}]"))
            except ValueError as exc:
                raise config.error(where, str(exc)) from exc
            continue
        if isinstance(item, dict) and set(item) <= {"name", "params"} and "name" in item:
            name, params = item["name"], item.get("params") or {}
        elif isinstance(item, dict) and len(item) == 1:
            name, params = next(iter(item.items()))
            params = params or {}
        else:
            raise config.error(
                where, f"{key}[{i}] is {item!r}; write 'name', 'name:key=value,...' or {{name: {{key: value}}}}"
            )
        if not isinstance(name, str) or not _NAME.match(name) or not isinstance(params, dict):
            raise config.error(
                where, f"{key}[{i}] is {item!r}: the name must be a policy name and its parameters a mapping"
            )
        specs.append(PolicySpec(name, {str(k).replace("-", "_"): v for k, v in params.items()}))
    return specs


def dump_config(data: Mapping[str, Any]) -> str:
    """A config as JSON text (JSON is also valid YAML), keys in the schema's order."""
    return json.dumps(dict(data), indent=2) + "\n"
