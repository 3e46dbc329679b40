"""A deterministic fake model: seeded logits that depend on the whole (bidirectional) row."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from daedal.core.adapter import PromptText
from daedal.core.errors import ConfigError

LogitsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class FakeAdapter:
    """A stand-in model whose logits are a fixed random function of the canvas.

    Each slot's logits depend on its own token, its position and the mean of the
    row's attended tokens (keys past ``length`` are ignored), so the fake behaves like a
    bidirectional model that respects padding: a row's logits do not depend on other
    rows of the batch. ``logits_fn`` replaces the function for tests with designed logits.

    Args:
        vocab_size: Logit width. Ids ``0..3`` are special: pad 0, EOS 1, end-of-turn 2, mask ``vocab_size - 1``.
        seed: Seed of the random weights.
        hidden: Width of the random features.
        max_length: Longest row accepted.
        eos_bias: Added to the EOS logit, growing with the position, so that long canvases end in EOS.
        predict_mask: Whether the mask id may be the argmax (real models rarely predict it).
        logits_fn: ``(tokens, length) -> logits`` overriding the random function.
    """

    def __init__(
        self,
        vocab_size: int = 48,
        *,
        seed: int = 0,
        hidden: int = 16,
        max_length: int = 4096,
        eos_bias: float = 0.0,
        predict_mask: bool = False,
        logits_fn: LogitsFn | None = None,
        pad_id: int = 0,
        eos_id: int = 1,
        device: str | torch.device = "cpu",
    ) -> None:
        if vocab_size < 8:
            raise ConfigError(f"`vocab_size` must be >= 8, got {vocab_size}")
        self.vocab_size = vocab_size
        self.mask_id = vocab_size - 1
        self.pad_id = pad_id
        self.eos_id = eos_id
        self.eot_id = 2
        self.eos_ids = frozenset({eos_id, self.eot_id})
        self.max_length = max_length
        self.device = torch.device(device)
        self.dtype = torch.float32
        self.eos_bias = eos_bias
        self.predict_mask = predict_mask
        self.logits_fn = logits_fn
        self.calls = 0
        g = torch.Generator().manual_seed(seed)
        self._emb = torch.randn(vocab_size, hidden, generator=g).to(self.device)
        self._mix = torch.randn(hidden, hidden, generator=g).to(self.device) / math.sqrt(hidden)
        self._out = torch.randn(hidden, vocab_size, generator=g).to(self.device)
        self._freq = torch.randn(hidden, generator=g).to(self.device)

    def logits(self, tokens: torch.Tensor, length: torch.Tensor, *, window: object = None) -> torch.Tensor:
        self.calls += 1
        if self.logits_fn is not None:
            return self.logits_fn(tokens, length).float()
        b, t = tokens.shape
        cols = torch.arange(t, device=tokens.device)
        valid = (cols < length[:, None]).float()
        h = self._emb[tokens] + torch.sin(cols[:, None].float() * self._freq)[None]
        ctx = (h * valid[..., None]).sum(1, keepdim=True) / valid.sum(1, keepdim=True).clamp(min=1)[..., None]
        out = torch.tanh((h + ctx) @ self._mix) @ self._out * 3.0
        if self.eos_bias:
            out[..., self.eos_id] += self.eos_bias * cols.float() / 16.0
        if not self.predict_mask:
            out[..., self.mask_id] = float("-inf")
        return out

    def encode(self, prompts: Sequence[PromptText], *, chat_template: bool = True) -> list[list[int]]:
        """Words become ids: integers as themselves, other words hashed into the ordinary range."""
        out = []
        for p in prompts:
            text = p if isinstance(p, str) else " ".join(m["content"] for m in p)
            ids = []
            for word in text.split():
                if word.isdigit() and 4 <= int(word) < self.vocab_size - 1:
                    ids.append(int(word))
                else:
                    ids.append(4 + sum(map(ord, word)) % (self.vocab_size - 5))
            out.append(ids)
        return out

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        names = {self.pad_id: "<pad>", self.eos_id: "<eos>", self.eot_id: "<eot>", self.mask_id: "<mask>"}
        return [" ".join(names.get(i, str(i)) for i in row) for row in ids]
