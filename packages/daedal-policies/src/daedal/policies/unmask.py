"""Unmasking rules: DAEDAL's block pointer and threshold fill with its fallbacks.

* :class:`BlockPointer` (reference semantics §6 step 9): blocks start at ``prompt_len + k *
  block_length``; each row works on the first block that still holds a mask, so blocks
  without masks (such as the EOS tail) are skipped and insertions never move the pointer.
  The pointer is derived from the canvas, so the policy keeps no state.
* :class:`ThresholdUnmask` (§6 step 6): commit every masked slot of the window whose
  proposal is not the mask id and whose confidence is strictly above the threshold; if
  none qualifies, commit the single most confident slot whose proposal is not the mask
  id; if every proposal is the mask id, renormalise without the mask id and commit the
  slot whose best other token is the most probable, with that token.

Ties go to the lowest column (the reference leaves them to CUDA kernels, reference semantics Q12).
"""

from __future__ import annotations

import attrs
import torch

from daedal.core import Canvas, Prediction, State, Unmask, Window, hookimpl
from daedal.core.prediction import best_non_mask

__all__ = [
    "BlockPointer",
    "ThresholdUnmask",
    "best_non_mask",
    "commit_all",
    "first_true",
    "one_hot_columns",
    "threshold_fill",
]
from daedal.policies._validate import int_at_least, unit_interval


def masked_in_window(state: State) -> torch.Tensor:
    """``[B, T]``: the masked slots inside the step's window (what a fill rule reads and fills)."""
    canvas, window = state.canvas, state.window
    assert canvas is not None and window is not None
    return canvas.masked & window.mask(canvas.width)


def first_true(mask: torch.Tensor) -> torch.Tensor:
    """``[B]`` column of the first True of each row (the width when there is none)."""
    cols = torch.arange(mask.shape[1], device=mask.device)
    return torch.where(mask, cols, mask.shape[1]).amin(1)


def one_hot_columns(index: torch.Tensor, width: int) -> torch.Tensor:
    """``[B, width]`` bool, True at ``index[b]`` in each row."""
    return torch.arange(width, device=index.device) == index[:, None]


def best_non_mask_of(prediction: Prediction, mask_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`best_non_mask` per column of a dense or sparse prediction (``[B, T]`` each; NaN / -1 where not computed)."""
    prob, token = best_non_mask(prediction.values, mask_id)
    return prediction.scatter(prob, float("nan")), prediction.scatter(token, -1)


def threshold_fill(prediction: Prediction, candidates: torch.Tensor, threshold: float, mask_id: int) -> Unmask:
    """DAEDAL's fill rule (reference semantics §6 step 6) on the ``candidates`` of each row.

    DAEDAL has its own rule for a mask proposal (skip it; if only mask proposals are left,
    take the best other id of the slot whose renormalised best other id is the most
    likely), so it reads the raw proposals; its fallback uses the core's ``best_non_mask``.
    """
    proposal = prediction.raw_tokens
    conf = prediction.raw_confidence
    usable = candidates & (proposal != mask_id)
    fill = usable & (conf > threshold)
    needs = candidates.any(1) & ~fill.any(1)
    has_usable = usable.any(1)
    # Fallback 1: the most confident slot whose proposal is not the mask id.
    best = conf.masked_fill(~usable, float("-inf")).argmax(1)
    fill = fill | (one_hot_columns(best, fill.shape[1]) & (needs & has_usable)[:, None])
    tokens = proposal
    only_masks = needs & ~has_usable
    if bool(only_masks.any()):  # rare: real models seldom propose the mask id
        prob, token = best_non_mask_of(prediction, mask_id)
        pick = one_hot_columns(prob.masked_fill(~candidates, float("-inf")).argmax(1), fill.shape[1])
        pick = pick & only_masks[:, None]
        tokens = torch.where(pick, token, proposal)
        fill = fill | pick
    return Unmask(where=fill, tokens=tokens)


def commit_all(canvas: Canvas, prediction: Prediction) -> Unmask:
    """Commit every masked slot with its proposal (never the mask id: the engine's proposal rule)."""
    return Unmask(where=canvas.masked, tokens=prediction.tokens)


@attrs.frozen(kw_only=True)
class BlockPointer:
    """Each row's window is the first ``block_length`` block (from its prompt end) that holds a mask.

    Attributes:
        block_length: Slots per block.
    """

    block_length: int = attrs.field(default=32, validator=int_at_least(1))

    @hookimpl
    def select_window(self, state: State) -> Window:
        canvas = state.canvas
        assert canvas is not None
        masked = canvas.masked
        first = first_true(masked)
        plen = canvas.prompt_len
        start = plen + torch.div(first - plen, self.block_length, rounding_mode="floor") * self.block_length
        end = torch.minimum(start + self.block_length, canvas.length)
        active = masked.any(1)
        # Rows without masks are inactive: an empty window at their end.
        return Window(start=torch.where(active, start, canvas.length), end=torch.where(active, end, canvas.length))


@attrs.frozen(kw_only=True)
class ThresholdUnmask:
    """Commit the window's masks whose confidence exceeds ``threshold``, at least one per row.

    Attributes:
        threshold: Fill threshold (strict ``>``), DAEDAL's ``high_conf_threshold``.
    """

    threshold: float = attrs.field(default=0.9, validator=unit_interval)

    @hookimpl
    def prediction_reads(self, state: State) -> torch.Tensor:
        return masked_in_window(state)

    @hookimpl
    def select_unmask(self, state: State, prediction: Prediction) -> Unmask:
        canvas, window = state.canvas, state.window
        assert canvas is not None and window is not None
        candidates = masked_in_window(state)
        return threshold_fill(prediction, candidates, self.threshold, canvas.mask_id)
