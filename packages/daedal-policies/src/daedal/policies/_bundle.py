"""Bundles built from their parts' fields: each default and validator is declared once, on the part.

A bundle (``Daedal``, ``LLaDADecoding``, ``FastDllm``, ``DreamDecoding``) declares each of
its fields as :func:`from_part` of the part that owns it, and builds the part with
:func:`part_kwargs`. Changing a part's default changes the bundle's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

#: Metadata key recording which part field a bundle field stands for.
ROUTE = "daedal_part_field"


def from_part(cls: type, name: str, **override: Any) -> Any:
    """A bundle field with the default and validator of ``cls``'s field ``name``.

    Args:
        cls: The part class (an attrs class).
        name: The part's field.
        override: ``default=...`` where the bundle's reference function has another default
            (LLaDA's ``generate`` decodes 128 slots in one block; the core schedule has no
            default length), ``validator=...`` for a check the bundle adds to the part's
            (which still applies).
    """
    field = attrs.fields_dict(cls)[name]
    default = override.pop("default", field.default)
    extra = override.pop("validator", None)
    if override:
        raise TypeError(f"from_part() takes only default=... and validator=..., got {sorted(override)}")
    validators = [v for v in (field.validator, extra) if v is not None]
    return attrs.field(
        default=default,
        validator=validators or None,
        converter=field.converter,
        metadata={ROUTE: (cls, name)},
    )


def part_kwargs(bundle: object, cls: type, **renames: str) -> dict[str, Any]:
    """Keyword arguments for part ``cls`` from the bundle fields declared :func:`from_part` of it.

    Args:
        bundle: The bundle value.
        cls: The part class.
        renames: ``part_field="bundle_field"`` for fields the bundle takes from another part
            (one bundle field may feed two parts: DAEDAL's ``expansion_factor``).
    """
    out: dict[str, Any] = {}
    for field in attrs.fields(type(bundle)):
        route = field.metadata.get(ROUTE)
        if route is not None and route[0] is cls:
            out[route[1]] = getattr(bundle, field.name)
    for part_name, bundle_name in renames.items():
        out[part_name] = getattr(bundle, bundle_name)
    return out


def routes(bundle_cls: type) -> Mapping[str, tuple[type, str]]:
    """Bundle field -> (part class, part field), for the fields declared :func:`from_part`."""
    return {f.name: f.metadata[ROUTE] for f in attrs.fields(bundle_cls) if ROUTE in f.metadata}
