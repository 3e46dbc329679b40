"""Build adapters and policies from command-line style specs.

Policy specs are ``name`` or ``name:key=value,key=value`` (values parsed as JSON when
they parse: numbers, booleans, lists). Names come from the ``daedal.policies``
entry-point group; two names are always known here:

* ``daedal`` — :class:`daedal.policies.Daedal` (the paper's setting by default);
* ``llada-decoding`` — LLaDA's fixed-length low-confidence decoding with
  ``gen_length``, ``steps`` (default ``gen_length``) and ``block_length`` (default 32):
  ``daedal.policies.LLaDADecoding`` when installed, else the core's ``FixedLength`` plus
  ``SemiAutoregressive``.

Model specs: ``fake`` (the core's fake adapter, for tests), ``bundled`` (the tiny model
shipped with daedal-models), or a checkpoint directory / hub id loaded by the adapter
named in ``adapter`` (default: the installed adapter whose ``model_types`` declares
``config.json``'s ``model_type``, else ``llada``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from daedal.core.errors import ConfigError, PolicyNotFoundError

__all__ = ["build_adapter", "build_policies", "fixed_length_policies", "parse_spec"]


def parse_spec(spec: Any) -> tuple[str, dict[str, Any]]:
    """``"name:k=v,k2=v2"`` (or a :class:`~daedal.models.runconfig.PolicySpec`) → ``("name", {"k": v, "k2": v2})``.

    The syntax is ``daedal generate``'s (:func:`daedal.models.runconfig.parse_policy_spec`):
    values read as JSON where they parse, so ``suppress-tokens:token_ids=[1,2]`` keeps its list.
    """
    from daedal.models.runconfig import PolicySpec, parse_policy_spec

    if isinstance(spec, PolicySpec):
        return spec.name, dict(spec.params)
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"a policy spec must be 'name' or 'name:key=value,...', got {spec!r}")
    parsed = parse_policy_spec(spec, argument="policy spec")
    return parsed.name, parsed.params


def fixed_length_policies(
    gen_length: int, steps: int | None = None, block_length: int = 32, **params: Any
) -> list[object]:
    """LLaDA's fixed-length baseline: ``gen_length`` slots, ``steps`` steps, blocks of ``block_length``.

    The block length is cut to ``gen_length`` when longer (the paper runs L=32 with one block).
    Further ``params`` (``reference_compat``, ``temperature``, ``remasking``...) go to
    ``daedal.policies.LLaDADecoding``, so ``llada-decoding:reference_compat=true`` is the
    DAEDAL repository's baseline.
    """
    if not isinstance(gen_length, int) or gen_length < 1:
        raise ConfigError(f"`gen_length` must be a positive int, got {gen_length!r}")
    steps = gen_length if steps is None else steps
    block = min(block_length, gen_length)
    try:
        from daedal.policies import LLaDADecoding  # type: ignore[attr-defined]
    except ImportError:
        if params:
            raise ConfigError(
                f"llada-decoding parameters {sorted(params)} need daedal-policies: pip install daedal-policies"
            ) from None
        from daedal.core import FixedLength, SemiAutoregressive

        return [FixedLength(gen_length=gen_length), SemiAutoregressive(block_length=block, steps=steps)]
    return [LLaDADecoding(gen_length=gen_length, steps=steps, block_length=block, **params)]


def _daedal(**params: Any) -> list[object]:
    try:
        from daedal.policies import Daedal
    except ImportError as err:
        raise ConfigError("policy 'daedal' needs daedal-policies: pip install daedal-policies") from err
    return [Daedal(**params)]


_BUILTIN = {"daedal": _daedal, "llada-decoding": fixed_length_policies, "fixed": fixed_length_policies}


def model_daedal_defaults(model: str) -> dict[str, Any]:
    """DAEDAL parameters a model recommends: the bundled model's or a checkpoint directory's
    ``daedal.json`` (``{"policies": {"daedal": {...}}}``), else none (the paper's defaults)."""
    try:
        from daedal.models import bundled
    except ImportError:
        return {}
    try:
        if model == "bundled":
            return dict(bundled.daedal_settings())
        if isinstance(model, str) and (Path(model) / "daedal.json").is_file():
            return dict(bundled.daedal_settings(model))
    except Exception:  # an unreadable daedal.json: the paper's defaults apply
        return {}
    return {}


def build_policies(specs: Sequence[str | object], *, daedal_defaults: Mapping[str, Any] | None = None) -> list[object]:
    """Policies from specs (strings) or already built policy objects, in order.

    Args:
        specs: ``name`` / ``name:key=value,...`` strings, ``PolicySpec`` objects or
            policy objects.
        daedal_defaults: Parameters for ``daedal`` that the spec does not set (e.g. the
            bundled model's recommended lengths).
    """
    from daedal.models.runconfig import PolicySpec

    out: list[object] = []
    for spec in specs:
        if not isinstance(spec, (str, PolicySpec)):
            out.append(spec)
            continue
        name, params = parse_spec(spec)
        if name == "daedal" and daedal_defaults:
            params = {**daedal_defaults, **params}
        from daedal.core import registry

        if name in registry.available("policies"):
            out.append(registry.create("policies", name, params))
        elif name in _BUILTIN:
            try:
                out.extend(_BUILTIN[name](**params))
            except TypeError as err:
                raise ConfigError(f"policy {name!r} does not take {sorted(params)}: {err}") from err
        else:
            known = sorted({*registry.available("policies"), *_BUILTIN})
            raise PolicyNotFoundError(f"no policy named {name!r}; available: {', '.join(known)}")
    return out


def _model_type(path: str) -> str | None:
    """The installed adapter that declares the checkpoint's ``model_type`` (see ``registry.adapter_for_model_type``)."""
    from daedal.core import registry

    config = Path(path) / "config.json"
    if not config.is_file():
        return None
    try:
        kind = str(json.loads(config.read_text(encoding="utf-8")).get("model_type", ""))
    except (OSError, ValueError):
        return None
    return registry.adapter_for_model_type(kind)


def build_adapter(
    model: str,
    *,
    adapter: str | None = None,
    dtype: str | None = None,
    device: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> Any:
    """Load a model adapter from a model spec (see the module docstring)."""
    from daedal.core import registry

    params = dict(params or {})
    if not isinstance(model, str) or not model:
        raise ConfigError(f"`model` must be 'fake', 'bundled', a checkpoint directory or a hub id, got {model!r}")
    if model == "fake":
        if device is not None:
            params.setdefault("device", device)
        return registry.create("adapters", "fake", params)
    if model == "bundled":
        try:
            from daedal.models import bundled
        except ImportError as err:
            raise ConfigError("model 'bundled' needs daedal-models: pip install daedal-models") from err
        for name in ("load", "load_bundled", "from_pretrained", "adapter"):
            loader = getattr(bundled, name, None)
            if callable(loader):
                kwargs = {k: v for k, v in (("dtype", dtype), ("device", device)) if v is not None}
                return loader(**kwargs, **params)
        raise ConfigError("daedal.models.bundled has no loader yet: pass a checkpoint path as `model`")
    name = adapter or _model_type(model) or "llada"
    cls = registry.load("adapters", name)
    kwargs = {k: v for k, v in (("dtype", dtype), ("device", device)) if v is not None}
    return cls.from_pretrained(model, **kwargs, **params)
