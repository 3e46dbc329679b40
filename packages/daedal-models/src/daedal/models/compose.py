"""Policies from ``--policy`` specs, completed by a checkpoint's recommended settings.

The command line builds its policy list here (``daedal generate``, and ``daedal eval``
through the same functions):

* :func:`recommended_specs` reads a checkpoint's ``daedal.json`` (``{"policies":
  {name: {params}}}``, in order);
* :func:`build_policies` creates the policies of the specs in order and, where they leave
  a role to nobody, fills that role in from the recommended policies. The roles are the
  *length* (``initial_canvas``), the *window* (``select_window``) and the *fill rule*
  (``select_unmask``); other recommended parts (e.g. stage-2 insertion) are added only
  when no spec is given at all. A spec naming a recommended policy, or one of the parts a
  recommended bundle stands for, starts from the recommended parameters;
* :func:`describe_policy` lists a policy's summary and parameters (name, type, default,
  description) for ``daedal policies NAME``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daedal.models.runconfig import PolicySpec

__all__ = ["Composition", "build_policies", "describe_policy", "policy_name", "recommended_specs", "roles"]

LENGTH, WINDOW, UNMASK, OTHER = "length", "window", "unmask", "other"
ROLE_HOOKS = {"initial_canvas": LENGTH, "select_window": WINDOW, "select_unmask": UNMASK}


def recommended_specs(directory: str | Path | None) -> list[PolicySpec]:
    """The policies a checkpoint recommends (its ``daedal.json``), in order; ``[]`` without one."""
    if directory is None:
        return []
    file = Path(directory) / "daedal.json"
    if not file.is_file():
        return []
    data = json.loads(file.read_text(encoding="utf-8"))
    return [PolicySpec(name, params) for name, params in (data.get("policies") or {}).items()]


def _hooks(policy: object) -> set[str]:
    from daedal.core import hookspecs

    found = set()
    for name in dir(type(policy)):
        opts = getattr(getattr(type(policy), name, None), f"{hookspecs.PROJECT}_impl", None)
        if opts is not None:
            found.add(opts.get("specname") or name)
    return found


def _flatten(policies: Sequence[object]) -> list[object]:
    from daedal.core.engine import flatten_policies

    return flatten_policies(policies)


def roles(policy: object) -> set[str]:
    """The roles a policy (or bundle) fills: ``length``, ``window``, ``unmask``, ``other``."""
    out = set()
    for part in _flatten([policy]):
        hooks = _hooks(part)
        found = {ROLE_HOOKS[h] for h in hooks if h in ROLE_HOOKS}
        out |= found or {OTHER}
    return out


def policy_name(policy: object) -> str:
    """The registered name of a policy's class (``'threshold-unmask'``), else the class name."""
    from daedal.core import registry

    target = f"{type(policy).__module__}:{type(policy).__qualname__}"
    for name, entry in registry.available("policies").items():
        if entry.target == target:
            return name
    return type(policy).__name__


def _params_of(policy: object) -> dict[str, Any]:
    import attrs

    if not attrs.has(type(policy)):
        return {}
    return {f.name: getattr(policy, f.name) for f in attrs.fields(type(policy)) if f.init}


class Composition:
    """What :func:`build_policies` made.

    Attributes:
        policies: The policy objects, in order (specs first, fill-ins after).
        specs: The specs of ``policies``: the given ones, then one per filled-in part
            with its full parameters (so the list reruns without any fill-in).
        filled: The specs that were filled in from the recommended settings.
    """

    def __init__(self, policies: list[object], specs: list[PolicySpec], filled: list[PolicySpec]) -> None:
        self.policies = policies
        self.specs = specs
        self.filled = filled


def _create(spec: PolicySpec) -> object:
    from daedal.core import registry

    return registry.create("policies", spec.name, spec.params)


def _target(policy: object) -> str:
    return f"{type(policy).__module__}:{type(policy).__qualname__}"


def build_policies(specs: Sequence[PolicySpec], recommended: Sequence[PolicySpec] = ()) -> Composition:
    """Create the policies of ``specs`` in order, filling missing roles from ``recommended``.

    Args:
        specs: The ``--policy`` specs (empty: the recommended policies themselves).
        recommended: The checkpoint's recommended policies (:func:`recommended_specs`).

    Raises:
        PolicyNotFoundError: A name that is not an installed policy.
        ConfigError: A parameter the policy does not have, or a bad value.
    """
    if not specs:
        return Composition([_create(s) for s in recommended], list(recommended), [])
    from daedal.core import registry

    installed = registry.available("policies")
    rec_parts = [(rec, _flatten([_create(rec)])) for rec in recommended]
    # Recommended parameters by policy class: the recommended policies and their parts.
    defaults: dict[str, dict[str, Any]] = {}
    for rec, parts in rec_parts:
        if rec.name in installed:
            defaults.setdefault(installed[rec.name].target, dict(rec.params))
        for part in parts:
            defaults.setdefault(_target(part), _params_of(part))
    given: list[PolicySpec] = []
    for spec in specs:
        target = installed[spec.name].target if spec.name in installed else ""
        given.append(PolicySpec(spec.name, {**defaults.get(target, {}), **spec.params}))
    policies = [_create(s) for s in given]
    have: set[str] = set()
    for p in policies:
        have |= roles(p)
    filled: list[PolicySpec] = []
    for _, parts in rec_parts:
        added: set[str] = set()
        for part in parts:
            part_roles = roles(part) - {OTHER}
            if part_roles and not part_roles & have:
                policies.append(part)
                filled.append(PolicySpec(policy_name(part), _params_of(part)))
                added |= part_roles
        have |= added
    return Composition(policies, given + filled, filled)


def _attribute_docs(doc: str) -> dict[str, str]:
    """``name: description`` lines of a Google-style ``Attributes:`` / ``Args:`` section."""
    out: dict[str, str] = {}
    section = False
    current = None
    for raw in doc.splitlines():
        line = raw.strip()
        if line in ("Attributes:", "Args:", "Parameters:"):
            section = True
            continue
        if not section:
            continue
        if not line:
            current = None
            continue
        if line.endswith(":") and " " not in line:  # the next section
            section = line in ("Attributes:", "Args:")
            continue
        head, sep, rest = line.partition(":")
        if sep and head.replace("_", "").isalnum() and " " not in head:
            current = head
            out[current] = rest.strip()
        elif current:
            out[current] += " " + line
    return out


def describe_policy(name: str) -> dict[str, Any]:
    """Summary and parameters of an installed policy (imports it).

    Returns:
        ``{"name", "target", "summary", "parameters": [{"name", "type", "default",
        "description"}]}``; a parameter without a default has ``"default": None`` and
        ``"required": True``.
    """
    import attrs

    from daedal.core import registry

    factory = registry.load("policies", name)
    doc = (getattr(factory, "__doc__", None) or "").strip()
    summary = doc.splitlines()[0].strip() if doc else ""
    docs = _attribute_docs(doc)
    params = []
    if attrs.has(factory):
        for f in attrs.fields(factory):
            if not f.init:
                continue
            required = f.default is attrs.NOTHING
            default = None
            if not required:
                default = f.default.factory() if isinstance(f.default, attrs.Factory) else f.default  # type: ignore[attr-defined]
            type_name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", repr(f.type))
            params.append(
                {
                    "name": f.name,
                    "type": type_name,
                    "default": default,
                    "required": required,
                    "description": docs.get(f.name, ""),
                }
            )
    return {
        "name": name,
        "target": registry.available("policies")[name].target,
        "summary": summary,
        "parameters": params,
    }
