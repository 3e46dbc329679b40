"""What one forward pass says about a canvas."""

from __future__ import annotations

from functools import cached_property

import attrs
import torch


@attrs.frozen(eq=False, repr=False)
class Prediction:
    """Logits for every slot, plus the token each slot would take.

    ``logits[b, i]`` predicts slot ``i`` of the canvas. ``tokens`` is the proposed id of
    each slot: the argmax by default, or a sample when a temperature wrapper is active.
    Confidences always come from the un-noised softmax of ``logits``.

    The proposal rule: once the ``predict`` hook has answered, the engine replaces every
    proposal that equals the mask id by the most likely other id (:func:`best_non_mask`),
    so the ``tokens`` a fill rule reads are never the mask id. What the hook proposed stays
    available as ``raw_tokens`` (and the plain argmax as ``argmax``), for reference
    reproductions whose reference treats a mask proposal its own way.

    Attributes:
        logits: ``[B, T, V]`` float logits (fp32 after the engine's ``predict``).
        tokens: ``[B, T]`` long proposed ids (never the mask id once the engine has checked them).
        sampled: Whether ``tokens`` were sampled (then they may differ from the argmax).
        peak: ``[B, T]`` the largest logit of each slot, when the prediction already computed
            it (``greedy`` does); the engine's finiteness check reuses it.
        replaced: ``[B, T]`` the proposals before the engine replaced mask-id proposals (None
            when none was replaced).
    """

    logits: torch.Tensor
    tokens: torch.Tensor
    sampled: bool = False
    peak: torch.Tensor | None = attrs.field(default=None, kw_only=True)
    replaced: torch.Tensor | None = attrs.field(default=None, kw_only=True)

    @classmethod
    def greedy(cls, logits: torch.Tensor) -> Prediction:
        """Take the argmax (lowest id on ties) as each slot's proposal."""
        logits = logits.float()
        # One reduction gives both the argmax and the peak the engine's finiteness check reads.
        peak, tokens = logits.max(-1)
        return cls(logits=logits, tokens=tokens, peak=peak)

    def __repr__(self) -> str:
        b, t, v = (tuple(self.logits.shape) + (0, 0, 0))[:3]
        extra = ", sampled" if self.sampled else ""
        extra += ", mask proposals replaced" if self.replaced is not None else ""
        return f"Prediction(batch={b}, width={t}, vocab={v}{extra})"

    @property
    def raw_tokens(self) -> torch.Tensor:
        """``[B, T]`` the proposals as the ``predict`` hook returned them (they may be the mask id)."""
        return self.tokens if self.replaced is None else self.replaced

    @cached_property
    def raw_confidence(self) -> torch.Tensor:
        """``[B, T]`` softmax probability of each raw proposal (``raw_tokens``)."""
        return self.confidence if self.replaced is None else self.prob_of(self.replaced)

    def with_logits(self, logits: torch.Tensor) -> Prediction:
        """The same prediction with new logits and greedy proposals (for logit transforms)."""
        return Prediction.greedy(logits)

    @cached_property
    def argmax(self) -> torch.Tensor:
        """``[B, T]`` raw argmax of the logits (it may be the mask id; the raw proposals unless sampled)."""
        return self.logits.argmax(-1) if self.sampled else self.raw_tokens

    @cached_property
    def log_normalizer(self) -> torch.Tensor:
        """``[B, T]`` log-sum-exp of the logits."""
        return torch.logsumexp(self.logits, -1)

    @cached_property
    def confidence(self) -> torch.Tensor:
        """``[B, T]`` softmax probability of each proposed token."""
        return self.prob_of(self.tokens)

    def prob_of(self, ids: torch.Tensor | int) -> torch.Tensor:
        """``[B, T]`` softmax probability of ``ids`` (a ``[B, T]`` tensor or one id for all slots)."""
        if self.logits.device.type == "cpu":
            # On CPU one softmax, cached and gathered from, is 3-6x cheaper than logsumexp
            # (measured in benchmarks/bench_prediction.py); on accelerators logsumexp is
            # cheap and avoids materialising a second [B, T, V] tensor.
            return _pick(self.probs, ids)
        return torch.exp(_pick(self.logits, ids) - self.log_normalizer)

    @cached_property
    def probs(self) -> torch.Tensor:
        """``[B, T, V]`` full softmax."""
        return torch.softmax(self.logits, -1)


def _pick(values: torch.Tensor, ids: torch.Tensor | int) -> torch.Tensor:
    if isinstance(ids, int):
        return values[..., ids]
    return values.gather(-1, ids.unsqueeze(-1)).squeeze(-1)


def probability_of(logits: torch.Tensor, ids: torch.Tensor | int) -> torch.Tensor:
    """``[B, T]`` softmax probability of ``ids`` under raw ``logits`` (fp32), by the fastest exact route."""
    return Prediction(logits=logits.float(), tokens=torch.empty(0, dtype=torch.long)).prob_of(ids)



def best_non_mask(logits: torch.Tensor, mask_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(probability, token)`` of the most likely id other than ``mask_id`` at each slot.

    The one helper behind the proposal rule: the engine uses it to replace mask-id
    proposals, and fill rules that need a fallback use it too. The probability is
    renormalised without the mask id (DAEDAL's fallback ranks slots by it).
    """
    no_mask = logits.index_fill(-1, torch.tensor([mask_id], device=logits.device), float("-inf"))
    top, token = no_mask.max(-1)
    return torch.exp(top - torch.logsumexp(no_mask, -1)), token


def without_mask_proposals(prediction: Prediction, mask_id: int) -> Prediction:
    """The proposal rule: ``prediction`` with every proposal equal to ``mask_id`` replaced by the best other id."""
    hit = prediction.tokens == mask_id
    # best_non_mask's token without its probability: one masked copy and one argmax.
    other = prediction.logits.index_fill(-1, torch.tensor([mask_id], device=prediction.logits.device), float("-inf"))
    other = other.argmax(-1)
    return attrs.evolve(prediction, tokens=torch.where(hit, other, prediction.tokens), replaced=prediction.tokens)
