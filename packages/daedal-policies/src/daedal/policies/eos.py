"""DAEDAL's EOS confidence (reference semantics §4), vectorised over the batch.

For each row, the positions ``q`` in ``[start, end)`` whose raw argmax is EOS are
ranked from the right; the ``window`` right-most of them are kept and their EOS
probabilities are summed and divided by ``window`` -- always ``window``, even when
fewer positions qualify. Positions whose argmax is not EOS are skipped entirely, so
the kept positions need not be contiguous.
"""

from __future__ import annotations

import torch

from daedal.core.prediction import Prediction, prob_rows, probability_of, read_index


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


#: Vocabulary entries tried against EOS before a full logit row is computed (see :func:`eos_confidence_of`).
SCREEN_IDS = 256


def eos_confidence_of(
    prediction: Prediction,
    *,
    eos_id: int,
    start: torch.Tensor,
    end: torch.Tensor,
    window: int,
) -> torch.Tensor:
    """``[B]`` EOS confidence from a dense or sparse prediction, equal to :func:`eos_confidence` on its full logits.

    On a sparse prediction the scan walks back from each row's end in chunks (``2 * window``
    columns, doubling), and stops for a row once ``window`` EOS-argmax columns are known at or
    after the frontier, or at ``start``; columns further left cannot be kept (§4). In each new
    chunk a column is first *screened*: the logits of EOS and of a few candidate ids (the
    proposals of the prediction's columns) are computed, and a candidate clearly above EOS
    proves EOS is not the argmax there. Only the remaining columns get a full logit row,
    whose argmax and EOS probability are then exactly those of the dense path.
    """
    if prediction.is_dense:
        return eos_confidence(
            prediction.logits,
            eos_id=eos_id,
            start=start,
            end=end,
            window=window,
            p_eos=prediction.prob_of(eos_id),
            argmax=prediction.argmax,
        )
    device = prediction.tokens.device
    width = prediction.width
    cols = torch.arange(width, device=device)
    scanned = (cols >= start[:, None]) & (cols < end[:, None])
    known = prediction.covered
    is_eos = (prediction.argmax == eos_id) & known & scanned
    p_eos = torch.nan_to_num(prediction.prob_of(eos_id), nan=0.0)
    screen = _screen_ids(prediction, eos_id)
    lo = end.clone()
    chunk = 2 * window
    while True:
        found = (is_eos & (cols >= lo[:, None])).sum(1)
        need = (found < window) & (lo > start)
        if not bool(need.any()):
            break
        new_lo = torch.where(need, torch.clamp(lo - chunk, min=start), lo)
        span = (cols >= new_lo[:, None]) & (cols < lo[:, None]) & ~known
        hit, prob, seen = _resolve(prediction, span, eos_id, screen)
        if screen.numel() < SCREEN_IDS and seen.numel():
            screen = _merge_ids(screen, seen, eos_id)
        is_eos = is_eos | (hit & scanned)
        p_eos = torch.where(span, prob, p_eos)
        known = known | span
        lo = new_lo
        chunk *= 2
    counts = is_eos.long()
    from_right = counts.sum(1, keepdim=True) - counts.cumsum(1) + counts
    kept = is_eos & (from_right <= window)
    return torch.where(kept, p_eos, torch.zeros_like(p_eos)).sum(1) / window


def _screen_ids(prediction: Prediction, eos_id: int) -> torch.Tensor:
    """Candidate ids likely to beat EOS: the distinct proposals of the prediction's own columns."""
    return _merge_ids(
        prediction.gather(prediction.argmax).reshape(-1)[:0], prediction.gather(prediction.argmax), eos_id
    )


def _merge_ids(ids: torch.Tensor, more: torch.Tensor, eos_id: int) -> torch.Tensor:
    """``ids`` and the distinct ids of ``more`` (not EOS, not a filler), at most :data:`SCREEN_IDS`."""
    new = torch.unique(more)
    new = new[(new >= 0) & (new != eos_id)]
    merged = torch.unique(torch.cat([ids, new]))
    return merged[:SCREEN_IDS]


def _resolve(
    prediction: Prediction, span: torch.Tensor, eos_id: int, screen: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``([B, T] argmax-is-EOS, [B, T] EOS probability, argmax ids of the full rows)`` at the ``span`` columns."""
    index = read_index(span)
    valid = span.gather(1, index)
    undecided = valid
    if screen.numel() and index.shape[1]:
        ids = torch.cat([screen, torch.tensor([eos_id], device=screen.device)])
        sub = prediction.logits_at(index, ids)
        rival, eos = sub[..., :-1], sub[..., -1:]
        # A rival clearly above EOS proves EOS is not the argmax; the margin covers rounding
        # differences between a narrow and a full LM-head product (and half-precision heads).
        margin = 1e-2 * (rival.abs() + eos.abs()) + 1e-3
        beaten = (rival > eos + margin).any(-1)
        undecided = valid & ~beaten
    rows = torch.zeros(span.shape, dtype=torch.bool, device=span.device).scatter(1, index, undecided)
    full = read_index(rows)
    hit = torch.zeros(span.shape, dtype=torch.bool, device=span.device)
    prob = torch.zeros(span.shape, dtype=torch.float32, device=span.device)
    seen = full.reshape(-1)[:0]
    if full.shape[1]:
        values = prediction.logits_at(full)
        ok = rows.gather(1, full)
        top = values.argmax(-1)
        hit = hit.scatter(1, full, (top == eos_id) & ok)
        prob = prob.scatter(1, full, torch.where(ok, prob_rows(values, eos_id), 0.0))
        seen = top[ok]
    return hit & span, prob, seen
