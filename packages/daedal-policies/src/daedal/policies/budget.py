"""Per-request budgets: caps on new tokens, forward passes and wall-clock time.

A :class:`Budget` publishes its limits in the run's stash when the run starts, so that
other policies can respect them too (DAEDAL's stage 1 stops growing, and never grows a
row past the new-token cap). Once the forward-pass or time budget is spent, the budget
takes over the next step: its window is the whole generation region, every remaining mask
is committed at once with its current proposal (the mask id never: the best other token),
expansion and remasking are switched off, and the run ends after that step. The step's
forward pass is the last one the budget allows; a run never stops with masks left. ``result.info["budget"]`` names the bound that stopped it.
"""

from __future__ import annotations

import attrs
import torch

from daedal.core import ConfigError, Expand, Prediction, Remask, RunStarted, StashKey, State, Unmask, Window, hookimpl
from daedal.core.state import LIMITS, Limits
from daedal.policies._validate import int_at_least, optional, positive
from daedal.policies.unmask import commit_all

__all__ = ["BUDGET", "CAP_BINDS", "Budget", "Limits", "mark", "new_token_cap", "spent"]


#: Where a :class:`Budget` keeps its limits during a run: the core's key, so the engine
#: enforces them too (``max_new_tokens`` bounds every row's ``Canvas.max_length``; the
#: forward-pass and deadline caps end the loop even when another policy answers the hooks).
BUDGET = LIMITS
#: Set by a length policy when the new-token cap is below its own maximum, so that an
#: expansion policy blocked by the canvas's maximum length knows the budget bound it.
CAP_BINDS = StashKey[bool]()
_FINAL = StashKey[bool]()


def spent(state: State, *, reserve: int = 0) -> str | None:
    """Name of the budget that is used up, or None.

    Args:
        state: The run's state.
        reserve: Forward passes to keep back (a length policy keeps one for the final step).
    """
    limits = state.stash.get(BUDGET)
    if limits is None:
        return None
    if limits.max_forward_passes is not None and state.counters.forward_passes + reserve >= limits.max_forward_passes:
        return "max_forward_passes"
    if limits.deadline_s is not None and state.elapsed() >= limits.deadline_s:
        return "deadline_s"
    return None


def new_token_cap(state: State) -> int | None:
    """The run's cap on generation slots per row, if a budget set one."""
    limits = state.stash.get(BUDGET)
    return None if limits is None else limits.max_new_tokens


def mark(state: State, name: str) -> None:
    """Record in ``result.info["budget"]`` which bound first limited the run."""
    state.report.setdefault("budget", name)


@attrs.frozen(kw_only=True)
class Budget:
    """Caps one request's cost; when a cap is reached, finish in one step.

    Its decision hooks are ``tryfirst``, so it answers before every other policy wherever
    it is listed; it defers (returns None) while budget is left. List it with a decoder
    (``Daedal``, ``LLaDADecoding``, ...): since it answers decision hooks, the engine's
    built-in decoder steps aside. A run needs at least one forward pass per stage (DAEDAL:
    one stage-1 probe and one step), so a smaller cap is exceeded by that minimum.

    Attributes:
        max_new_tokens: Cap on each row's generation slots. Length policies that read the
            budget (``EosConfidenceLength``) grow rows at most to it; for fixed-length
            decoders a longer ``gen_length`` is an error.
        max_forward_passes: Cap on model forward passes (stage-1 probes included).
        deadline_s: Wall-clock seconds for the whole run.
    """

    max_new_tokens: int | None = attrs.field(default=None, validator=optional(int_at_least(1)))
    max_forward_passes: int | None = attrs.field(default=None, validator=optional(int_at_least(1)))
    deadline_s: float | None = attrs.field(default=None, validator=optional(positive))

    def __attrs_post_init__(self) -> None:
        if self.max_new_tokens is None and self.max_forward_passes is None and self.deadline_s is None:
            raise ConfigError(
                "`Budget` got no cap: set at least one of `max_new_tokens`, `max_forward_passes`, `deadline_s`"
            )

    @hookimpl
    def on_event(self, event: object, state: State) -> None:
        if isinstance(event, RunStarted):
            state.stash[BUDGET] = Limits(self.max_new_tokens, self.max_forward_passes, self.deadline_s)

    @hookimpl
    def should_stop(self, state: State) -> bool:
        canvas = state.canvas
        assert canvas is not None
        if state.step == 0 and self.max_new_tokens is not None:
            longest = int(canvas.gen_length.max())
            if longest > self.max_new_tokens:
                raise ConfigError(
                    f"`max_new_tokens` {self.max_new_tokens} is smaller than the decoder's generation length "
                    f"{longest}: lower the decoder's length (e.g. gen_length) or raise the budget"
                )
        return False

    @hookimpl(tryfirst=True)
    def select_window(self, state: State) -> Window | None:
        # Decided before the step's forward pass: if it is the last one the budget allows,
        # this step takes the whole generation region and commits every mask.
        bound = spent(state, reserve=1)
        if bound is None:
            return None
        mark(state, bound)
        state.stash[_FINAL] = True
        canvas = state.canvas
        assert canvas is not None
        return Window.whole(canvas.prompt_len, canvas.length)

    @hookimpl(tryfirst=True)
    def select_unmask(self, state: State, prediction: Prediction) -> Unmask | None:
        if not state.stash.get(_FINAL, False):
            return None
        assert state.canvas is not None
        return commit_all(state.canvas, prediction)

    @hookimpl(tryfirst=True)
    def select_expand(self, state: State, prediction: Prediction, unmask: Unmask) -> Expand | None:
        if not state.stash.get(_FINAL, False):
            return None
        return Expand(where=torch.zeros_like(unmask.where), factor=1)

    @hookimpl(tryfirst=True)
    def select_remask(self, state: State, prediction: Prediction, unmask: Unmask) -> Remask | None:
        if not state.stash.get(_FINAL, False):
            return None
        return Remask(where=torch.zeros_like(unmask.where))
