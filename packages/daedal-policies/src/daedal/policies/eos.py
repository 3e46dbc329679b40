"""DAEDAL's EOS confidence (reference semantics §4), vectorised over the batch.

For each row, the positions ``q`` in ``[start, end)`` whose raw argmax is EOS are
ranked from the right; the ``window`` right-most of them are kept and their EOS
probabilities are summed and divided by ``window`` -- always ``window``, even when
fewer positions qualify. Positions whose argmax is not EOS are skipped entirely, so
the kept positions need not be contiguous.
"""

from __future__ import annotations

import torch

from daedal.core.prediction import probability_of


def eos_confidence(
    logits: torch.Tensor,
    *,
    eos_id: int,
    start: torch.Tensor,
    end: torch.Tensor,
    window: int,
    p_eos: torch.Tensor | None = None,
    argmax: torch.Tensor | None = None,
) -> torch.Tensor:
    """``[B]`` EOS confidence of each row.

    Args:
        logits: ``[B, T, V]`` raw (never noised) logits.
        eos_id: The EOS id.
        start: ``[B]`` first scanned column (the prompt length: the prompt is excluded).
        end: ``[B]`` one past the last scanned column (the row's length).
        window: ``W_eos``: how many EOS-argmax positions are kept, and the denominator.
        p_eos: ``[B, T]`` softmax probability of EOS if already computed.
        argmax: ``[B, T]`` raw argmax of ``logits`` if already computed.
    """
    if p_eos is None:
        p_eos = probability_of(logits, eos_id)
    cols = torch.arange(logits.shape[1], device=logits.device)
    scanned = (cols >= start[:, None]) & (cols < end[:, None])
    is_eos = (eos_argmax(logits, eos_id) if argmax is None else argmax == eos_id) & scanned
    counts = is_eos.long()
    # How many EOS-argmax positions lie at or after each column: a reversed cumulative count.
    from_right = counts.sum(1, keepdim=True) - counts.cumsum(1) + counts
    kept = is_eos & (from_right <= window)
    return torch.where(kept, p_eos, torch.zeros_like(p_eos)).sum(1) / window


def eos_argmax(logits: torch.Tensor, eos_id: int) -> torch.Tensor:
    """``[B, T]``: whether ``logits.argmax(-1) == eos_id``, without a full argmax.

    A max-reduction is much cheaper than an argmax on some backends. ``argmax`` returns the
    lowest id among ties, so EOS is the argmax only if it reaches the maximum and no lower
    id does.
    """
    top = logits.amax(-1, keepdim=True)
    hit = logits[..., eos_id] == top[..., 0]
    if eos_id > 0:
        hit = hit & ~(logits[..., :eos_id] == top).any(-1)
    return hit
