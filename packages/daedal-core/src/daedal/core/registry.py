"""Entry-point discovery: list what is installed without importing it, load by name.

Groups, one per kind: ``daedal.policies``, ``daedal.adapters``, ``daedal.suites``,
``daedal.commands``.
"""

from __future__ import annotations

import json
import sys
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


_SCAN: tuple[tuple[str, ...], metadata.EntryPoints] | None = None


def _entry_points(group: str) -> metadata.EntryPoints:
    """The installed entry points of ``group``, from one scan per ``sys.path``.

    A scan of every installed distribution costs ~20 ms and a generation asks ~20 times,
    so the scan is kept until ``sys.path`` changes (a path added at run time is seen).
    """
    global _SCAN
    key = tuple(sys.path)
    if _SCAN is None or _SCAN[0] != key:
        _SCAN = (key, metadata.entry_points())
    return _SCAN[1].select(group=group)


def _group(kind: str) -> str:
    if kind not in GROUPS:
        raise ConfigError(f"`kind` must be one of {sorted(GROUPS)}, got {kind!r}")
    return GROUPS[kind]


def available(kind: str) -> dict[str, Available]:
    """Installed entry points of ``kind``, by name. Imports nothing from them."""
    found: dict[str, Available] = {}
    for ep in _entry_points(_group(kind)):
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
    for ep in _entry_points(_group(kind)):
        if ep.name == name:
            try:
                return ep.load()
            except Exception as err:  # an installed plugin that fails to import
                raise PluginError(f"the {kind} entry point {name!r} ({ep.value}) failed to load: {err}") from err
    raise PolicyNotFoundError(f"no {kind} named {name!r}")  # pragma: no cover - raced uninstall


def init_names(factory: Any) -> list[str]:
    """The keyword names an attrs class takes: each field's ``alias`` (``_limit`` is passed as ``limit``)."""
    return [field.alias or field.name for field in attrs.fields(factory) if field.init]


def create(kind: str, name: str, params: Mapping[str, Any] | None = None) -> Any:
    """Load ``name`` and call it with ``params``; unknown parameters list the valid ones."""
    factory = load(kind, name)
    params = dict(params or {})
    if attrs.has(factory):
        valid = init_names(factory)
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ConfigError(f"{SINGULAR[kind]} {name!r} has no parameter(s) {unknown}; valid: {valid}")
    try:
        return factory(**params)
    except TypeError as err:
        raise ConfigError(f"cannot build {name!r} with {params}: {err}") from err


def adapter_for_model_type(model_type: str) -> str | None:
    """The name of the installed adapter that loads checkpoints of ``model_type``, or None.

    Adapters declare what they load as a ``model_types`` attribute (a tuple of the
    ``model_type`` values of ``config.json`` they accept; compared without case). Only
    this lookup imports the adapter entry points, so listing them stays import-free.
    Entry points that fail to import, or that declare nothing, are passed over.

    Raises:
        PluginError: Two installed adapters declare the same ``model_type``.
    """
    wanted = str(model_type).strip().lower()
    if not wanted:
        return None
    claims: list[str] = []
    for name in available("adapters"):
        try:
            target = load("adapters", name)
        except PluginError:
            continue
        declared = getattr(target, "model_types", ())
        if isinstance(declared, str):
            declared = (declared,)
        if wanted in {str(t).lower() for t in declared}:
            claims.append(name)
    if len(claims) > 1:
        raise PluginError(
            f"the adapters {claims} all declare model_type {model_type!r}; choose one explicitly "
            "(e.g. --adapter NAME) or uninstall one",
            code="plugin-load",
        )
    return claims[0] if claims else None


def declared_model_types() -> dict[str, tuple[str, ...]]:
    """Each installed adapter's declared ``model_types`` (imports the adapters; for messages)."""
    out: dict[str, tuple[str, ...]] = {}
    for name in available("adapters"):
        try:
            declared = getattr(load("adapters", name), "model_types", ())
        except PluginError:
            continue
        if declared:
            out[name] = (declared,) if isinstance(declared, str) else tuple(declared)
    return out


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
