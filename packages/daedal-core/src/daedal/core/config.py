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
        max_steps: End the loop after this many steps; remaining masks are then committed
            by the engine's final fill and ``result.stats.stopped_by`` is ``"max_steps"``.
            None: the engine derives a safety cap from the canvas (:func:`step_cap`) and
            raises :class:`~daedal.core.PolicyError` if a run reaches it (policies that
            commit and remask forever).
    """

    seed: int = attrs.field(default=0, validator=_non_negative_int)
    record: bool = False
    max_steps: int | None = attrs.field(default=None, validator=_non_negative_int)


def step_cap(max_row_length: int) -> int:
    """The step cap of a run without ``max_steps``: ``1024 + 4 x`` the longest row the canvas may reach.

    Generous for every schedule in the project (a step commits at least one slot unless it
    is an idle step of a bounded schedule), small enough that a run that remasks and
    commits forever stops within seconds on a toy model.
    """
    return 1024 + 4 * max_row_length
