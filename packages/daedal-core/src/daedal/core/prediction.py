"""What one forward pass says about a canvas."""

from __future__ import annotations

from functools import cached_property

import attrs
import torch


@attrs.frozen(eq=False)
class Prediction:
    """Logits for every slot, plus the token each slot would take.

    ``logits[b, i]`` predicts slot ``i`` of the canvas. ``tokens`` is the proposed id of
    each slot: the argmax by default, or a sample when a temperature wrapper is active.
    Confidences always come from the un-noised softmax of ``logits``.

    Attributes:
        logits: ``[B, T, V]`` float logits (fp32 after the engine's ``predict``).
        tokens: ``[B, T]`` long proposed ids.
        sampled: Whether ``tokens`` were sampled (then they may differ from the argmax).
    """

    logits: torch.Tensor
    tokens: torch.Tensor
    sampled: bool = False

    @classmethod
    def greedy(cls, logits: torch.Tensor) -> Prediction:
        """Take the argmax (lowest id on ties) as each slot's proposal."""
        logits = logits.float()
        return cls(logits=logits, tokens=logits.argmax(-1))

    def with_logits(self, logits: torch.Tensor) -> Prediction:
        """The same prediction with new logits and greedy proposals (for logit transforms)."""
        return Prediction.greedy(logits)

    @cached_property
    def argmax(self) -> torch.Tensor:
        """``[B, T]`` raw argmax of the logits (the proposals themselves unless sampled)."""
        return self.logits.argmax(-1) if self.sampled else self.tokens

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

