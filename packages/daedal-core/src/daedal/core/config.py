"""Engine configuration."""

from __future__ import annotations

import attrs

from daedal.core.errors import ConfigError


def _non_negative_int(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise ConfigError(f"`{attribute.name}` must be a non-negative int, got {value!r}")


@attrs.frozen(kw_only=True)
class EngineConfig:
    """How an :class:`~daedal.core.Engine` runs.

    Attributes:
        seed: Seed of the run's generator (every random number comes from it).
        record: Keep a step trace in ``result.trace``.
        max_steps: Stop with an error after this many steps (None: no cap; the engine
            still stops a run that makes no progress).
    """

    seed: int = attrs.field(default=0, validator=_non_negative_int)
    record: bool = False
    max_steps: int | None = attrs.field(default=None, validator=_non_negative_int)
