"""Random toy models for oracle tests: bit-exact per row, with tunable confidence and EOS behaviour.

Logits are sums of table look-ups (token, column, and a hash of the row's whole attended
content), so a row's logits are bit-identical whatever else is in the batch and however
wide the canvas is -- the property the default mode's batch-invariance test needs -- while
still depending on every attended token, like a bidirectional model.
"""

from __future__ import annotations

import torch

from daedal.core.testing import FakeAdapter


class ToyModel:
    """``(tokens, length) -> logits`` for :class:`~daedal.core.testing.FakeAdapter` (``logits_fn``).

    Args:
        vocab_size: Logit width; the mask id is ``vocab_size - 1``, EOS is 1.
        seed: Seed of the tables.
        sharpness: Scale of the random logits (larger: more confident).
        eos_gain: EOS logit bonus at the end of a row, growing with the row's length.
        eos_length: Row length at which the bonus reaches ``eos_gain``.
        mask_logit: Logit of the mask id (None: never proposed).
    """

    def __init__(
        self,
        vocab_size: int = 24,
        *,
        seed: int = 0,
        sharpness: float = 2.0,
        eos_gain: float = 4.0,
        eos_length: float = 40.0,
        mask_logit: float | None = None,
        contexts: int = 997,
        positions: int = 4096,
    ) -> None:
        g = torch.Generator().manual_seed(seed)
        self.vocab_size = vocab_size
        self.mask_id = vocab_size - 1
        self.eos_id = 1
        self.contexts = contexts
        self.token_table = torch.randn(vocab_size, vocab_size, generator=g) * sharpness
        self.position_table = torch.randn(positions, vocab_size, generator=g) * sharpness
        self.context_table = torch.randn(contexts, vocab_size, generator=g) * sharpness
        self.eos_gain = eos_gain
        self.eos_length = eos_length
        self.mask_logit = mask_logit

    def __call__(self, tokens: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        b, t = tokens.shape
        cols = torch.arange(t)
        valid = cols < length[:, None]
        # Exact integer hash of the row's attended content: independent of padding and batch.
        weights = (cols * 7 + 3) % 101
        h = (torch.where(valid, tokens * weights, 0).sum(1) * 31 + length) % self.contexts
        out = self.token_table[tokens] + self.position_table[cols][None] + self.context_table[h][:, None]
        # EOS grows toward the end of the row and with the row's length.
        rel = cols[None].float() / length[:, None].float()
        scale = torch.clamp(length.float() / self.eos_length, max=2.0)[:, None]
        eos = out[..., self.eos_id] + self.eos_gain * scale * (2.0 * rel - 1.0)
        out = torch.cat([out[..., : self.eos_id], eos[..., None], out[..., self.eos_id + 1 :]], -1)
        mask_col = torch.full((b, t, 1), float("-inf") if self.mask_logit is None else self.mask_logit)
        return torch.cat([out[..., : self.mask_id], mask_col], -1)


def toy_adapter(**kwargs) -> FakeAdapter:
    """A FakeAdapter driven by a :class:`ToyModel` (same vocabulary, mask and EOS ids)."""
    model = ToyModel(**kwargs)
    return FakeAdapter(vocab_size=model.vocab_size, logits_fn=model, predict_mask=model.mask_logit is not None)
