"""The native models' side of a model session: hidden states, the LM head, the KV store.

:class:`NativeBackend` implements ``daedal.core.session.CacheBackend`` for the native LLaDA
and Dream models; ``daedal.core.session.CachedSession`` runs it (logits only where read,
Fast-dLLM's prefix and dual caches). The store is every layer's keys and values *before*
RoPE (``[B, n_kv_heads, T, head_dim]`` each), so moved entries are rotated at their new
columns when used; the rotated keys are kept beside the store (:class:`~daedal.models._layers.RotatedKeys`)
and recomputed only when the store moved, so a cached step rotates only the columns it feeds.
"""

from __future__ import annotations

from typing import Any

import torch

from daedal.models import _layers


class NativeBackend:
    """Run a native model for a :class:`~daedal.core.session.CachedSession`.

    Args:
        adapter: The adapter; its ``model`` has ``hidden``, ``head`` and ``key_angles``.
    """

    def __init__(self, adapter: Any) -> None:
        self.adapter = adapter
        self.model = adapter.model
        self.shifted = bool(adapter.shifted)
        self.vocab_size = int(adapter.vocab_size)
        self.rotated = _layers.RotatedKeys()
        self._angles: tuple[int, torch.device, torch.Tensor, torch.Tensor] | None = None

    def _key_angles(self, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The keys' RoPE angles at ``0..width-1``, computed once per canvas width."""
        if self._angles is None or self._angles[:2] != (width, device):
            cos, sin = self.model.key_angles(width, device)
            self._angles = (width, device, cos, sin)
        return self._angles[2], self._angles[3]

    def full(
        self, tokens: torch.Tensor, length: torch.Tensor, *, capture: bool
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        tokens, length = self.adapter.checked_inputs(tokens, length)
        layers: list[list[torch.Tensor]] = []
        kv = _layers.KVPass(layers, "capture", rotated=self.rotated) if capture else None
        with torch.inference_mode():
            hidden = self.model.hidden(tokens, attention_mask=self.adapter.key_mask(tokens, length), kv=kv)
        return hidden, [t for layer in layers for t in layer]

    def partial(
        self,
        tokens: torch.Tensor,
        length: torch.Tensor,
        cols: torch.Tensor,
        store: list[torch.Tensor],
        *,
        write_back: bool,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        tokens, length = self.adapter.checked_inputs(tokens, length)
        layers = [list(store[i : i + 2]) for i in range(0, len(store), 2)]
        kv = _layers.KVPass(layers, "partial", cols, write_back=write_back, rotated=self.rotated)
        kv.key_cos, kv.key_sin = self._key_angles(tokens.shape[1], tokens.device)
        kv.key_mask = _layers.key_padding_mask(self.adapter.key_mask(tokens, length))
        with torch.inference_mode():
            hidden = self.model.hidden(tokens.gather(1, cols), position_ids=cols, kv=kv)
        return hidden, [t for layer in kv.store for t in layer]

    def head(self, hidden: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.head(hidden, ids)
