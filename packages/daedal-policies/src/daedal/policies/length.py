"""DAEDAL stage 1: initial length adjustment by EOS confidence, then the EOS tail (reference semantics §5).

Each row starts as its prompt and ``initial_gen_length`` masks. One forward pass per
iteration measures every row's EOS confidence (§4); a row below
``eos_confidence_threshold`` that is shorter than ``max_gen_length`` grows by
``expansion_factor`` masks. When no row grows, each row gets ``eos_check_tokens // 2``
real EOS tokens after its masks (the EOS tail; attended, never denoised, part of the
output) and stage 2 starts from that canvas.

Modes:

* ``reference_compat=True`` reproduces the official implementation: prompts left-padded
  with EOS (attended), decisions re-taken for every row at each iteration, and the loop
  ends when no growing row would exceed the batch's longest row (Q2).
* default: right padding with per-row prompt lengths, and a row that stops stays stopped,
  so each row's length depends only on its own prompt.
"""

from __future__ import annotations

import attrs
import torch

from daedal.core import Canvas, ConfigError, LengthChanged, State, hookimpl
from daedal.policies._validate import boolean, initial_within_max, int_at_least, optional, unit_interval
from daedal.policies.budget import CAP_BINDS, mark, new_token_cap, spent
from daedal.policies.eos import eos_confidence
from daedal.policies.padding import build_canvas, check_fits, layout_prompts
from daedal.policies.reference import ReferenceStage1


class _Stage1:
    """Stage-1 rules of the default mode: right padding, and a row that stops stays stopped."""

    left_pad = False

    @staticmethod
    def grow(
        low: torch.Tensor, stopped: torch.Tensor, length: torch.Tensor, cap: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(wants, grow, stopped) of one iteration: rows below the threshold that never stopped grow."""
        wants = low & ~stopped
        grow = wants & (length < cap)
        return wants, grow, stopped | ~grow

    @staticmethod
    def stops(new: torch.Tensor, length: torch.Tensor) -> bool:
        """The loop ends only when no row grows: each row's length depends on its own prompt."""
        return False


@attrs.frozen(kw_only=True)
class EosConfidenceLength:
    """DAEDAL's stage 1: grow each row until the model is confident it ends, then add the EOS tail.

    Attributes:
        initial_gen_length: Starting generation slots ``L_init``.
        max_gen_length: Cap ``L_max`` on generation slots (EOS tail included, prompt excluded).
            It also becomes the canvas's maximum, which stage-2 insertion respects.
        expansion_factor: Growth per iteration.
        eos_confidence_threshold: A row whose EOS confidence reaches this stops growing (``τ_eos``).
        eos_check_tokens: EOS-confidence window ``W_eos``.
        eos_tail: EOS tokens appended after stage 1 (None: ``eos_check_tokens // 2``, as the reference).
        reference_compat: Reproduce the reference's batching and stop test (see the module).
    """

    initial_gen_length: int = attrs.field(default=64, validator=int_at_least(1))
    max_gen_length: int = attrs.field(default=2048, validator=int_at_least(1))
    expansion_factor: int = attrs.field(default=8, validator=int_at_least(2))
    eos_confidence_threshold: float = attrs.field(default=0.5, validator=unit_interval)
    eos_check_tokens: int = attrs.field(default=32, validator=int_at_least(1))
    eos_tail: int | None = attrs.field(default=None, validator=optional(int_at_least(0)))
    reference_compat: bool = attrs.field(default=False, validator=boolean)

    def __attrs_post_init__(self) -> None:
        initial_within_max(self.initial_gen_length, self.max_gen_length)

    @property
    def tail(self) -> int:
        return self.eos_check_tokens // 2 if self.eos_tail is None else self.eos_tail

    def _cap(self, state: State) -> int:
        cap = new_token_cap(state)
        if cap is None or cap >= self.max_gen_length:
            return self.max_gen_length
        if cap < self.initial_gen_length:
            raise ConfigError(
                f"the budget's `max_new_tokens` {cap} is smaller than `initial_gen_length` "
                f"{self.initial_gen_length}: raise the budget or lower initial_gen_length"
            )
        state.stash[CAP_BINDS] = True
        return cap

    @property
    def _rules(self) -> type[_Stage1] | type[ReferenceStage1]:
        # The one switch: the official code's batching and stop test live in daedal.policies.reference.
        return ReferenceStage1 if self.reference_compat else _Stage1

    @hookimpl
    def initial_canvas(self, state: State) -> Canvas:
        adapter = state.adapter
        mask_id, eos_id = adapter.mask_id, adapter.eos_id
        rules = self._rules
        prompts = layout_prompts(
            state.prompts,
            left_pad=rules.left_pad,
            eos_id=eos_id,
            pad_id=adapter.pad_id,
            device=torch.device(adapter.device),
        )
        check_fits(state, prompts, self.max_gen_length, "max_gen_length")
        if getattr(adapter, "shifted", False):
            # The official DAEDAL code reads the model's logits as they come, so it only runs models
            # whose raw logit row i predicts slot i: nothing to verify a shifted model's run against.
            state.report["reference_verifiable"] = False
        cap = self._cap(state)
        length = torch.full_like(prompts.prompt_len, self.initial_gen_length)
        stopped = torch.zeros_like(length, dtype=torch.bool)
        canvas = build_canvas(prompts, length, mask_id=mask_id, max_gen_length=cap)
        while True:
            logits = state.forward(canvas.tokens, canvas.length)
            eos = eos_confidence(
                logits.float(),
                eos_id=eos_id,
                start=canvas.prompt_len,
                end=canvas.length,
                window=self.eos_check_tokens,
            )
            wants, grow, stopped = rules.grow(eos < self.eos_confidence_threshold, stopped, length, cap)
            if cap < self.max_gen_length and bool((wants & (length + self.expansion_factor > cap)).any()):
                mark(state, "max_new_tokens")
            if not bool(grow.any()):
                break
            bound = spent(state, reserve=1)  # keep one forward pass for the step that finishes the run
            if bound is not None:
                mark(state, bound)
                break
            new = torch.where(grow, torch.clamp(length + self.expansion_factor, max=cap), length)
            if rules.stops(new, length):
                break
            length = new
            canvas = build_canvas(prompts, length, mask_id=mask_id, max_gen_length=cap)
            state.emit(LengthChanged(canvas, "eos-confidence", state.counters.forward_passes))
        tail = torch.clamp(length + self.tail, max=cap) - length
        state.report["stage1_gen_length"] = length.tolist()
        if self.tail == 0:
            return canvas
        canvas = build_canvas(prompts, length, tail=tail, tail_id=eos_id, mask_id=mask_id, max_gen_length=cap)
        state.emit(LengthChanged(canvas, "eos-tail", state.counters.forward_passes))
        return canvas
