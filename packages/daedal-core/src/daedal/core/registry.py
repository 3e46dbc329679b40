"""Entry-point discovery: list what is installed without importing it, load by name.

Groups, one per kind: ``daedal.policies``, ``daedal.adapters``, ``daedal.suites``,
``daedal.commands``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import attrs

from daedal.core.errors import ConfigError, PluginError, PolicyNotFoundError

#: The singular noun of each kind, for messages.
SINGULAR = {"policies": "policy", "adapters": "adapter", "suites": "suite", "commands": "command"}

GROUPS = {
    "policies": "daedal.policies",
    "adapters": "daedal.adapters",
    "suites": "daedal.suites",
    "commands": "daedal.commands",
}


@attrs.frozen
class Available:
    """One installed entry point, described without importing it."""

    name: str
    target: str
    distribution: str | None


def _group(kind: str) -> str:
    if kind not in GROUPS:
        raise ConfigError(f"`kind` must be one of {sorted(GROUPS)}, got {kind!r}")
    return GROUPS[kind]


def available(kind: str) -> dict[str, Available]:
    """Installed entry points of ``kind``, by name. Imports nothing from them."""
    found: dict[str, Available] = {}
    for ep in metadata.entry_points(group=_group(kind)):
        owner = getattr(ep, "dist", None)
        dist = owner.name if owner is not None else None
        if ep.name in found and found[ep.name].target != ep.value:
            raise PluginError(
                f"two distributions provide the {kind} name {ep.name!r}: {found[ep.name].distribution} "
                f"({found[ep.name].target}) and {dist} ({ep.value}); uninstall one",
                code="plugin-load",
            )
        found[ep.name] = Available(ep.name, ep.value, dist)
    return dict(sorted(found.items()))


def load(kind: str, name: str) -> Any:
    """Import and return the object registered as ``name`` in the ``kind`` group."""
    names = available(kind)
    if name not in names:
        raise PolicyNotFoundError(
            f"no {kind} named {name!r} is installed; available: {', '.join(names) or '(none)'}",
        )
    for ep in metadata.entry_points(group=_group(kind)):
        if ep.name == name:
            try:
                return ep.load()
            except Exception as err:  # an installed plugin that fails to import
                raise PluginError(f"the {kind} entry point {name!r} ({ep.value}) failed to load: {err}") from err
    raise PolicyNotFoundError(f"no {kind} named {name!r}")  # pragma: no cover - raced uninstall


def create(kind: str, name: str, params: Mapping[str, Any] | None = None) -> Any:
    """Load ``name`` and call it with ``params``; unknown parameters list the valid ones."""
    factory = load(kind, name)
    params = dict(params or {})
    if attrs.has(factory):
        valid = [f.name for f in attrs.fields(factory) if f.init]
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ConfigError(f"{SINGULAR[kind]} {name!r} has no parameter(s) {unknown}; valid: {valid}")
    try:
        return factory(**params)
    except TypeError as err:
        raise ConfigError(f"cannot build {name!r} with {params}: {err}") from err


def parse_value(text: str) -> Any:
    """Read a ``--set key=value`` value: JSON when it parses (numbers, booleans, lists), else the string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """Turn ``["a=1", "b=x"]`` into ``{"a": 1, "b": "x"}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"`--set` takes key=value, got {item!r}: write e.g. --set threshold=0.9")
        out[key.strip().replace("-", "_")] = parse_value(value)
    return out
