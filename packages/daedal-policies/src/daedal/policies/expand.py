"""DAEDAL stage 2 insertion (reference semantics §6 step 7 and 8).

While a row's EOS confidence is below ``expand_eos_confidence_threshold`` and it has
room, the least confident masked slot of its current window with confidence below
``low_conf_threshold`` (and not filled this step) becomes ``expansion_factor`` masks:
one insertion per row per step, content after it shifts right, the window's start does
not move.

Room: the reference inserts whenever the row is shorter than its maximum and cuts the row
at the maximum afterwards (reference semantics Q6, dropping its last slots); with
``reference_compat=True`` this policy does the same through ``Expand(truncate=True)``.
By default a row inserts only when the whole block fits, so nothing is ever cut.
"""

from __future__ import annotations

import attrs
import torch

from daedal.core import Expand, Prediction, State, Unmask, hookimpl
from daedal.policies._validate import boolean, int_at_least, unit_interval
from daedal.policies.budget import CAP_BINDS, mark
from daedal.policies.eos import eos_confidence_of
from daedal.policies.reference import reference_insertion_room
from daedal.policies.unmask import masked_in_window


@attrs.frozen(kw_only=True)
class LowConfidenceExpand:
    """Insert a block of masks at the least confident low-confidence mask of each row's window.

    The row's maximum length comes from the canvas (``Canvas.max_length``), which the
    length policy sets (``EosConfidenceLength``: prompt + ``max_gen_length``).

    Attributes:
        low_conf_threshold: Candidates have confidence strictly below this (``τ_low``).
        expansion_factor: Masks one selected slot becomes (net growth ``factor - 1``).
        expand_eos_confidence_threshold: No insertion once the row's EOS confidence is at
            least this (``τ_expand``).
        eos_check_tokens: EOS-confidence window ``W_eos`` (§4).
        reference_compat: Insert whenever the row is below its maximum and truncate (Q6).
    """

    low_conf_threshold: float = attrs.field(default=0.1, validator=unit_interval)
    expansion_factor: int = attrs.field(default=8, validator=int_at_least(2))
    expand_eos_confidence_threshold: float = attrs.field(default=0.9, validator=unit_interval)
    eos_check_tokens: int = attrs.field(default=32, validator=int_at_least(1))
    reference_compat: bool = attrs.field(default=False, validator=boolean)

    @hookimpl
    def prediction_reads(self, state: State) -> torch.Tensor:
        # The window's masks; the EOS scan extends the prediction itself from the row's end.
        canvas, window = state.canvas, state.window
        assert canvas is not None and window is not None
        return canvas.masked & window.mask(canvas.width)

    @hookimpl
    def select_expand(self, state: State, prediction: Prediction, unmask: Unmask) -> Expand | None:
        canvas, window = state.canvas, state.window
        assert canvas is not None and window is not None
        eos = eos_confidence_of(
            prediction,
            eos_id=state.adapter.eos_id,
            start=canvas.prompt_len,
            end=canvas.length,
            window=self.eos_check_tokens,
        )
        if self.reference_compat:
            room, truncate = reference_insertion_room(canvas, self.expansion_factor)
        else:
            # Insert only where the whole block fits: nothing is ever cut.
            room, truncate = canvas.length + (self.expansion_factor - 1) <= canvas.max_length, False
        wants = eos < self.expand_eos_confidence_threshold
        conf = prediction.raw_confidence  # DAEDAL ranks the raw proposals' confidences (§6 step 7)
        candidates = masked_in_window(state) & ~unmask.where & (conf < self.low_conf_threshold)
        candidates = candidates & wants[:, None]
        if state.stash.get(CAP_BINDS, False) and bool((candidates.any(1) & ~room).any()):
            mark(state, "max_new_tokens")
        candidates = candidates & room[:, None]
        if not bool(candidates.any()):
            return None
        # argmin returns the first minimum: ties go to the lowest column.
        point = conf.masked_fill(~candidates, float("inf")).argmin(1)
        where = (canvas.columns == point[:, None]) & candidates.any(1)[:, None]
        return Expand(where=where, factor=self.expansion_factor, truncate=truncate)
