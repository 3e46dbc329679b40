"""Remasking refinement: spend extra iterations revising the least confident committed tokens.

Test-time compute in the spirit of LAD's "noiseless refinement": when a step fills the
last masks of a region (the current block, or the whole generation), the same step
re-masks the ``tokens`` committed tokens of that region that the model now finds least
likely (their probability under this step's logits), so the run goes on and the unmasking
policy predicts them again with the full context. Each region is refined ``iterations``
times; prompt tokens are never touched.

Works with decoders that stop when no mask is left (``Daedal``, ``FastDllm``, ``DreamDecoding``
stops by steps and so does ``LLaDADecoding``: there refinement ends with the step budget).
"""

from __future__ import annotations

import attrs
import torch

from daedal.core import Prediction, Remask, StashKey, State, Unmask, hookimpl
from daedal.policies._validate import int_at_least, one_of

_DONE = StashKey[torch.Tensor]()
_REGION = StashKey[torch.Tensor]()


@attrs.frozen(kw_only=True)
class Refine:
    """Re-mask the least confident committed tokens of a region once it is filled.

    Attributes:
        iterations: Refinement rounds per region.
        tokens: Tokens re-masked per row and round.
        scope: ``"block"`` (each window, e.g. DAEDAL's current block) or ``"canvas"``
            (the whole generation region, once it is complete).
    """

    iterations: int = attrs.field(default=1, validator=int_at_least(1))
    tokens: int = attrs.field(default=4, validator=int_at_least(1))
    scope: str = attrs.field(default="canvas", validator=one_of("block", "canvas"))

    @hookimpl
    def prediction_reads(self, state: State) -> torch.Tensor:
        # The committed tokens of the region, whose beliefs rank the re-masking.
        canvas, window = state.canvas, state.window
        assert canvas is not None and window is not None
        if self.scope == "block":
            return canvas.generation & window.mask(canvas.width)
        return canvas.generation

    @hookimpl
    def select_remask(self, state: State, prediction: Prediction, unmask: Unmask) -> Remask | None:
        canvas, window = state.canvas, state.window
        assert canvas is not None and window is not None
        masked = canvas.masked
        if self.scope == "block":
            region = canvas.generation & window.mask(canvas.width)
        else:
            region = canvas.generation
        done = state.stash.get(_DONE)
        if done is None:
            done = torch.zeros_like(canvas.length)
        if self.scope == "block":
            # Rounds are counted per block: a row that moved to another block starts afresh.
            previous = state.stash.get(_REGION)
            if previous is not None:
                done = torch.where(window.start == previous, done, torch.zeros_like(done))
            state.stash[_REGION] = window.start
        in_region = masked & region
        filled_now = in_region.any(1) & ~(in_region & ~unmask.where).any(1)
        active = filled_now & (done < self.iterations)
        state.stash[_DONE] = done + active.long()
        if not bool(active.any()):
            return None
        committed = region & ~masked
        belief = prediction.prob_of(canvas.tokens).masked_fill(~committed, float("inf"))
        order = torch.sort(belief, dim=1, stable=True).indices
        ranks = torch.empty_like(order)
        ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
        where = committed & (ranks < self.tokens) & active[:, None]
        return Remask(where=where)
