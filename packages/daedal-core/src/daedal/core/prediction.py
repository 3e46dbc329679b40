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
    """

    logits: torch.Tensor
    tokens: torch.Tensor

    @classmethod
    def greedy(cls, logits: torch.Tensor) -> Prediction:
        """Take the argmax (lowest id on ties) as each slot's proposal."""
        logits = logits.float()
        return cls(logits=logits, tokens=logits.argmax(-1))

    def with_logits(self, logits: torch.Tensor) -> Prediction:
        """The same prediction with new logits and greedy proposals (for logit transforms)."""
        return Prediction.greedy(logits)

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
        if isinstance(ids, int):
            picked = self.logits[..., ids]
        else:
            picked = self.logits.gather(-1, ids.unsqueeze(-1)).squeeze(-1)
        return torch.exp(picked - self.log_normalizer)

    @cached_property
    def probs(self) -> torch.Tensor:
        """``[B, T, V]`` full softmax. Costly on large vocabularies: prefer ``prob_of``."""
        return torch.softmax(self.logits, -1)
