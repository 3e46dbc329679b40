"""attrs validators shared by the policies: each error names the field, the value and the fix."""

from __future__ import annotations

import math

import attrs

from daedal.core import ConfigError


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def unit_interval(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    """A probability threshold: a finite number in [0, 1]."""
    if not _is_number(value) or not 0.0 <= value <= 1.0:  # type: ignore[operator]
        raise ConfigError(f"`{attribute.name}` must be a number in [0, 1], got {value!r}: thresholds are probabilities")


def non_negative(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    """A finite number >= 0."""
    if not _is_number(value) or value < 0:  # type: ignore[operator]
        raise ConfigError(f"`{attribute.name}` must be a finite number >= 0, got {value!r}")


def positive(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    """A finite number > 0."""
    if not _is_number(value) or value <= 0:  # type: ignore[operator]
        raise ConfigError(f"`{attribute.name}` must be a finite number > 0, got {value!r}")


def int_at_least(low: int):  # type: ignore[no-untyped-def]
    """An int >= ``low`` (bools rejected)."""

    def check(_inst: object, attribute: attrs.Attribute, value: object) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"`{attribute.name}` must be an int >= {low}, got {value!r}")

    return check


def optional(check):  # type: ignore[no-untyped-def]
    """Allow None in front of another validator."""

    def run(inst: object, attribute: attrs.Attribute, value: object) -> None:
        if value is not None:
            check(inst, attribute, value)

    return run


def one_of(*choices: str):  # type: ignore[no-untyped-def]
    """One of a fixed set of strings."""

    def check(_inst: object, attribute: attrs.Attribute, value: object) -> None:
        if value not in choices:
            raise ConfigError(f"`{attribute.name}` must be one of {list(choices)}, got {value!r}")

    return check


def boolean(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    """A real bool (not 0/1 or a string)."""
    if not isinstance(value, bool):
        raise ConfigError(f"`{attribute.name}` must be True or False, got {value!r}")


def initial_within_max(initial_gen_length: int, max_gen_length: int) -> None:
    """``initial_gen_length <= max_gen_length``; for ``__attrs_post_init__``, once both fields are valid."""
    if initial_gen_length > max_gen_length:
        raise ConfigError(
            f"`initial_gen_length` {initial_gen_length} is larger than `max_gen_length` "
            f"{max_gen_length}: lower initial_gen_length or raise max_gen_length"
        )
