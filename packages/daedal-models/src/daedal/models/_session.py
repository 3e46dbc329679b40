"""The native models' session: hidden states once per pass, the LM head where read, KV caches.

A forward pass runs the transformer body and keeps its final hidden states ``[B, T, d]``;
logits come from :class:`HeadSource` at the columns asked for, so the ``[B, T, V]`` tensor
exists only when a policy reads the whole canvas.

Caches follow Fast-dLLM (``baselines.md`` c.2, c.3), per row. The step's window is the
block. When a row's block starts (its window start moves), the row gets a full pass that
also stores every layer's keys and values *before RoPE*. On later steps of the block only
some columns are fed:

* ``prefix``: the block and everything after it (``[start, length)``); the columns before
  the block attend from the store.
* ``dual``: the block only (``[start, end)``); the prefix and the suffix come from the
  store, and the block's fresh entries replace their stored ones.

The last hidden states of every column are stored too, so a column that is not fed this
pass (DAEDAL's EOS scan reads the suffix) is read from its last computation. Because keys
are stored before RoPE, an insertion (DAEDAL) only moves entries: the session shifts the
store with the canvas, and the moved keys are rotated at their new columns when used.
A remask invalidates the store (the next pass is full).
"""

from __future__ import annotations

from typing import Any

import torch

from daedal.core.session import AppliedStep, expansion_sources
from daedal.core.window import Window
from daedal.models import _layers


class HeadSource:
    """Logits on demand from final hidden states (``daedal.core.session.LogitSource``).

    Args:
        model: A native model with ``head(h, ids)``.
        hidden: ``[B, T, d]`` final hidden states.
        shifted: The model's row ``q`` predicts column ``q + 1`` (Dream): column ``i``
            reads row ``max(i - 1, 0)``.
        vocab_size: Width of the logits.
    """

    def __init__(self, model: Any, hidden: torch.Tensor, *, shifted: bool, vocab_size: int) -> None:
        self.model = model
        self.hidden = hidden
        self.shifted = shifted
        self.batch_size, self.width = hidden.shape[:2]
        self.vocab_size = vocab_size

    def _rows(self, index: torch.Tensor) -> torch.Tensor:
        if self.shifted:
            index = (index - 1).clamp(min=0)
        return self.hidden.gather(1, index[..., None].expand(-1, -1, self.hidden.shape[-1]))

    def at(self, index: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        with torch.inference_mode():
            return self.model.head(self._rows(index), ids).float()

    def dense(self) -> torch.Tensor:
        with torch.inference_mode():
            logits = self.model.head(self.hidden).float()
        if self.shifted:
            logits = torch.cat((logits[:, :1], logits[:, :-1]), dim=1)
        return logits


class NativeSession:
    """One run's session over a native LLaDA or Dream model (see the module docstring).

    Args:
        adapter: The adapter (its ``model`` must have ``hidden``, ``head`` and ``key_angles``).
        cache: None, ``"prefix"`` or ``"dual"``.
    """

    def __init__(self, adapter: Any, cache: str | None) -> None:
        self.adapter = adapter
        self.model = adapter.model
        self.cache = cache
        self.shifted = bool(adapter.shifted)
        self.vocab_size = int(adapter.vocab_size)
        self.closed = False
        self._reset()
        #: Forward passes by kind, for benchmarks and tests.
        self.passes = {"full": 0, "partial": 0}

    def _reset(self) -> None:
        self.store: list[list[torch.Tensor]] = []
        self.hidden: torch.Tensor | None = None
        self.block: torch.Tensor | None = None  # [B] window start each row's store was built for

    # -- the protocol -----------------------------------------------------------------

    def forward(self, tokens: torch.Tensor, length: torch.Tensor, *, window: Window | None = None) -> HeadSource:
        if self.closed:
            raise RuntimeError("this model session is closed: a session serves one run only")
        tokens, length = self.adapter.checked_inputs(tokens, length)
        if self.cache is None or window is None:
            if self.cache is not None:
                self._reset()  # a pass outside the step loop (a length probe): the store is stale
            return self._source(self._full(tokens, length, capture=False))
        start, end = window.start.to(tokens.device), window.end.to(tokens.device)
        fresh = self.hidden is None or self.hidden.shape[:2] != tokens.shape or self.block is None
        refresh = torch.ones_like(start, dtype=torch.bool) if fresh else start != self.block
        if bool(refresh.all()):
            self._reset()
            self.hidden = self._full(tokens, length, capture=True)
            self.block = start.clone()
            return self._source(self.hidden)
        if bool(refresh.any()):
            rows = refresh.nonzero().squeeze(1)
            sub_store: list[list[torch.Tensor]] = []
            sub = self._full(tokens[rows], length[rows], capture=True, store=sub_store)
            assert self.hidden is not None
            self.hidden = self.hidden.index_copy(0, rows, sub)
            for layer, (k, v) in zip(self.store, sub_store, strict=True):
                layer[0] = layer[0].index_copy(0, rows, k)
                layer[1] = layer[1].index_copy(0, rows, v)
            self.block = torch.where(refresh, start, self.block)
            keep = (~refresh).nonzero().squeeze(1)
            self._partial(tokens, length, start, end, rows=keep)
        else:
            self._partial(tokens, length, start, end, rows=None)
        assert self.hidden is not None
        return self._source(self.hidden)

    def applied(self, step: AppliedStep) -> None:
        if self.cache is None or self.hidden is None:
            return
        if step.remask is not None and bool(step.remask.where.any()):
            self._reset()  # committed tokens changed back: the stored entries no longer describe the canvas
            return
        if step.expand is None or not bool(step.expand.where.any()):
            return
        rows = self.hidden.shape[0]
        src = expansion_sources(step.expand.where, step.expand.factor, step.after.width)
        if rows != src.shape[0]:  # guidance stacks conditional and unconditional rows
            src = src.repeat(rows // src.shape[0], 1)
        self.hidden = self.hidden.gather(1, src[..., None].expand(-1, -1, self.hidden.shape[-1]))
        for layer in self.store:
            for j, t in enumerate(layer):
                layer[j] = t.gather(2, src[:, None, :, None].expand(-1, t.shape[1], -1, t.shape[-1]))

    def close(self) -> None:
        self._reset()
        self.closed = True

    # -- passes -------------------------------------------------------------------------

    def _source(self, hidden: torch.Tensor) -> HeadSource:
        return HeadSource(self.model, hidden, shifted=self.shifted, vocab_size=self.vocab_size)

    def _full(
        self,
        tokens: torch.Tensor,
        length: torch.Tensor,
        *,
        capture: bool,
        store: list[list[torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        self.passes["full"] += 1
        mask = self.adapter.key_mask(tokens, length)
        kv = _layers.KVPass(self.store if store is None else store, "capture") if capture else None
        with torch.inference_mode():
            return self.model.hidden(tokens, attention_mask=mask, kv=kv)

    def _partial(
        self,
        tokens: torch.Tensor,
        length: torch.Tensor,
        start: torch.Tensor,
        end: torch.Tensor,
        *,
        rows: torch.Tensor | None,
    ) -> None:
        """Feed each row's block (dual) or block and suffix (prefix), attending to the store."""
        assert self.hidden is not None
        self.passes["partial"] += 1
        store = self.store
        if rows is not None:
            tokens, length, start, end = tokens[rows], length[rows], start[rows], end[rows]
            store = [[k[rows], v[rows]] for k, v in self.store]
        stop = end if self.cache == "dual" else length
        count = (stop - start).clamp(min=1)
        width = int(count.max())
        offsets = torch.arange(width, device=tokens.device)
        # Rows with fewer fed columns repeat their last one: a duplicate computes the same entries.
        cols = start[:, None] + torch.minimum(offsets[None, :], count[:, None] - 1)
        cols = cols.clamp(max=tokens.shape[1] - 1)
        kv = _layers.KVPass(store, "partial", cols, write_back=self.cache == "dual")
        kv.key_cos, kv.key_sin = self.model.key_angles(tokens.shape[1], tokens.device)
        kv.key_mask = _layers.key_padding_mask(self.adapter.key_mask(tokens, length))
        with torch.inference_mode():
            fed = self.model.hidden(tokens.gather(1, cols), position_ids=cols, kv=kv)
        index = cols[..., None].expand(-1, -1, fed.shape[-1])
        if rows is None:
            self.hidden = self.hidden.scatter(1, index, fed)
            if self.cache == "dual":
                self.store = kv.store
        else:
            part = self.hidden[rows].scatter(1, index, fed)
            self.hidden = self.hidden.index_copy(0, rows, part)
            if self.cache == "dual":
                for layer, (k, v) in zip(self.store, kv.store, strict=True):
                    layer[0] = layer[0].index_copy(0, rows, k)
                    layer[1] = layer[1].index_copy(0, rows, v)
