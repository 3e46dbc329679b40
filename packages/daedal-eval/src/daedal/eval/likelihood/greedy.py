"""Whether greedy unmasking reproduces an answer: LLaDA's check for lm-eval's ``is_greedy``.

Starting from the prompt and a fully masked answer region, each step runs the model,
takes the argmax token and its probability at every still-masked answer slot, and
commits the single most confident one (ties: the leftmost slot). After as many steps as
the answer has tokens, the answer is "greedy" when every committed token matches it
(LLaDA's ``suffix_greedy_prediction``). A row stops as soon as it commits a wrong token:
greedy decoding is deterministic, so its verdict can no longer change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from daedal.eval.likelihood.estimator import _positive_int, check_pair, guide

__all__ = ["greedy_matches", "is_greedy"]


def greedy_matches(
    adapter: Any,
    pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
    *,
    cfg_scale: float = 0.0,
    batch_size: int = 32,
) -> list[bool]:
    """:func:`is_greedy` of many pairs, ``batch_size`` rows per forward pass."""
    _positive_int("batch_size", batch_size)
    if isinstance(cfg_scale, bool) or not isinstance(cfg_scale, (int, float)) or cfg_scale < 0:
        from daedal.core.errors import ConfigError

        raise ConfigError(f"`cfg_scale` must be a number >= 0 (0 disables guidance), got {cfg_scale!r}")
    checked = [
        check_pair(adapter, p, a, where=f" of pairs[{n}]" if len(pairs) > 1 else "") for n, (p, a) in enumerate(pairs)
    ]
    verdicts: list[bool] = []
    for start in range(0, len(checked), batch_size):
        verdicts += _greedy_batch(adapter, checked[start : start + batch_size], float(cfg_scale))
    return verdicts


def is_greedy(adapter: Any, prompt_ids: Sequence[int], answer_ids: Sequence[int], *, cfg_scale: float = 0.0) -> bool:
    """Whether iterative greedy unmasking of the answer region, given the prompt, yields ``answer_ids``.

    Args:
        adapter: Any :class:`~daedal.core.ModelAdapter`.
        prompt_ids: Prompt token ids.
        answer_ids: The answer to check (its length fixes the masked region).
        cfg_scale: Classifier-free guidance scale, as in the log-likelihood.
    """
    return greedy_matches(adapter, [(prompt_ids, answer_ids)], cfg_scale=cfg_scale)[0]


def _greedy_batch(adapter: Any, pairs: list[tuple[list[int], list[int]]], cfg_scale: float) -> list[bool]:
    mask_id, pad_id = int(adapter.mask_id), int(getattr(adapter, "pad_id", 0))
    n = len(pairs)
    width = max(len(p) + len(a) for p, a in pairs)
    tokens = torch.full((n, width), pad_id, dtype=torch.long)
    target = torch.full((n, width), -1, dtype=torch.long)
    region = torch.zeros((n, width), dtype=torch.bool)
    prompt_len = torch.tensor([len(p) for p, _ in pairs])
    for i, (p, a) in enumerate(pairs):
        tokens[i, : len(p)] = torch.tensor(p, dtype=torch.long)
        tokens[i, len(p) : len(p) + len(a)] = mask_id
        target[i, len(p) : len(p) + len(a)] = torch.tensor(a, dtype=torch.long)
        region[i, len(p) : len(p) + len(a)] = True
    lengths = torch.tensor([len(p) + len(a) for p, a in pairs])
    in_prompt = torch.arange(width)[None, :] < prompt_len[:, None]
    alive = torch.ones(n, dtype=torch.bool)
    for _ in range(int(region.sum(1).max())):
        rows = (alive & (region & (tokens == mask_id)).any(1)).nonzero().squeeze(1)
        if len(rows) == 0:
            break
        toks, lens = tokens[rows], lengths[rows]
        open_slots = region[rows] & (toks == mask_id)
        device = adapter.device
        if cfg_scale > 0:
            batch = torch.cat((toks, toks.masked_fill(in_prompt[rows], mask_id)))
            logits = adapter.logits(batch.to(device), torch.cat((lens, lens)).to(device))
            cond, uncond = logits.chunk(2)
            where = open_slots.to(logits.device)
            sel = guide(cond[where].float(), uncond[where].float(), cfg_scale)
        else:
            logits = adapter.logits(toks.to(device), lens.to(device))
            sel = logits[open_slots.to(logits.device)].float()
        # Only the open slots need a softmax: the argmax token and its probability.
        best_p, best_tok = torch.softmax(sel, dim=-1).max(dim=-1)
        confidence = torch.full(open_slots.shape, -1.0)
        proposal = torch.full(open_slots.shape, mask_id, dtype=torch.long)
        confidence[open_slots] = best_p.cpu()
        proposal[open_slots] = best_tok.cpu()
        pick = confidence.masked_fill(~open_slots, -1.0).argmax(dim=1)  # first maximum: leftmost slot
        chosen = proposal.gather(1, pick[:, None]).squeeze(1)
        tokens[rows, pick] = chosen
        alive[rows] = chosen == target[rows, pick]
    done = ~(region & (tokens == mask_id)).any(1)
    return (alive & done & ((tokens == target) | ~region).all(1)).tolist()
