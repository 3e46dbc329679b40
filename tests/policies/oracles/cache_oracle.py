"""Oracle for the KV caches: Fast-dLLM's cached block loops, transcribed per row, and a cacheable toy model.

:class:`ToyBackend` runs the tests' table-lookup :class:`~tests.policies.oracles.models.ToyModel`
behind ``daedal.core.session.CachedSession``: its "keys" are the tokens themselves (the
context hash of a column's row reads stored tokens where a column is not fed), and the
position enters only at use, like keys kept before RoPE. Everything is integer look-ups,
so a row's logits are bit-identical whatever the batch.

:func:`cached_reference` is a straightforward, per-row transcription of Fast-dLLM's
``generate_with_prefix_cache`` / ``generate_with_dual_cache`` (``baselines.md`` c.2, c.3)
with LLaDA's transfer schedule (``steps``) or the confidence threshold (``threshold``),
on the same toy model, written independently of the engine.
"""

from __future__ import annotations

import torch

from daedal.core.session import CachedSession
from daedal.core.testing import FakeAdapter
from tests.policies.oracles.models import ToyModel


def _context(model: ToyModel, keys: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """``[B]`` hash of each row's keys at their current columns (padding ignored)."""
    cols = torch.arange(keys.shape[1])
    valid = cols < length[:, None]
    weights = (cols * 7 + 3) % 101
    return (torch.where(valid, keys * weights, 0).sum(1) * 31 + length) % model.contexts


def _layer2(model: ToyModel, tokens: torch.Tensor, h1: torch.Tensor) -> torch.Tensor:
    return (tokens * 13 + h1[:, None]) % model.contexts


class CacheToy(ToyModel):
    """The two-layer toy (see the module); calling it is the full, uncached forward pass."""

    def __call__(self, tokens: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        h2 = _context(self, _layer2(self, tokens, _context(self, tokens, length)), length)
        cols = torch.arange(tokens.shape[1]).expand_as(tokens)
        return _logits(self, tokens, cols, h2[:, None].expand_as(tokens), length[:, None].expand_as(tokens))


def _logits(model: ToyModel, tok: torch.Tensor, col: torch.Tensor, h: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """ToyModel's logits of columns with token ``tok`` at ``col`` in a row of context ``h`` and ``length``."""
    out = model.token_table[tok] + model.position_table[col] + model.context_table[h]
    rel = col.float() / length.float()
    scale = torch.clamp(length.float() / model.eos_length, max=2.0)
    eos = out[..., model.eos_id] + model.eos_gain * scale * (2.0 * rel - 1.0)
    out = torch.cat([out[..., : model.eos_id], eos[..., None], out[..., model.eos_id + 1 :]], -1)
    mask_col = torch.full((*out.shape[:-1], 1), float("-inf") if model.mask_logit is None else model.mask_logit)
    return torch.cat([out[..., : model.mask_id], mask_col], -1)


class ToyBackend:
    """``CacheBackend`` over a :class:`ToyModel`; hidden rows are ``(token, column, context, length)``."""

    shifted = False

    def __init__(self, model: CacheToy) -> None:
        self.model = model
        self.vocab_size = model.vocab_size
        self.calls: list[tuple[str, tuple[int, ...]]] = []
        #: ``[B, K]`` of every LM-head call (``K == T`` is a whole-canvas logit tensor).
        self.heads: list[tuple[int, ...]] = []

    def _hidden(self, tok: torch.Tensor, col: torch.Tensor, h: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        return torch.stack([tok, col, h[:, None].expand_as(tok), length[:, None].expand_as(tok)], -1).float()

    def full(self, tokens, length, *, capture):  # type: ignore[no-untyped-def]
        self.calls.append(("full", tuple(tokens.shape)))
        m = self.model
        k2 = _layer2(m, tokens, _context(m, tokens, length))
        cols = torch.arange(tokens.shape[1]).expand_as(tokens)
        hidden = self._hidden(tokens, cols, _context(m, k2, length), length)
        return hidden, [_entry(tokens), _entry(k2)] if capture else []

    def partial(self, tokens, length, cols, store, *, write_back):  # type: ignore[no-untyped-def]
        self.calls.append(("partial", tuple(cols.shape)))
        m = self.model
        fed = tokens.gather(1, cols)
        keys1 = _value(store[0]).scatter(1, cols, fed)
        h1 = _context(m, keys1, length)
        keys2 = _value(store[1]).scatter(1, cols, _layer2(m, fed, h1))
        hidden = self._hidden(fed, cols, _context(m, keys2, length), length)
        return hidden, [_entry(keys1), _entry(keys2)] if write_back else store

    def head(self, hidden, ids=None):  # type: ignore[no-untyped-def]
        self.heads.append(tuple(hidden.shape[:-1]))
        tok, col, h, length = hidden.long().unbind(-1)
        out = _logits(self.model, tok, col, h, length)
        return out if ids is None else out.index_select(-1, ids)


def _entry(keys: torch.Tensor) -> torch.Tensor:
    return keys[:, None, :, None].float()  # a store entry: [B, 1, T, 1]


def _value(entry: torch.Tensor) -> torch.Tensor:
    return entry[:, 0, :, 0].long()


class CachedToyAdapter(FakeAdapter):
    """A toy-model fake adapter with model sessions (logits where read, prefix and dual caches)."""

    def __init__(self, model: CacheToy) -> None:
        super().__init__(vocab_size=model.vocab_size, logits_fn=model, predict_mask=model.mask_logit is not None)
        self.model = model
        self.sessions: list[CachedSession] = []

    def open_session(self, *, cache: str | None = None) -> CachedSession:
        session = CachedSession(ToyBackend(self.model), cache)
        self.sessions.append(session)
        return session


def cached_toy_adapter(**kwargs) -> CachedToyAdapter:  # type: ignore[no-untyped-def]
    return CachedToyAdapter(CacheToy(**kwargs))


def cached_reference(
    model: ToyModel,
    prompts: list[list[int]],
    *,
    gen_length: int,
    block_length: int,
    mode: str,
    steps: int | None = None,
    threshold: float | None = None,
) -> tuple[list[list[int]], list[int]]:
    """Per row: Fast-dLLM's cached generation. Returns the generated ids and the forward passes of each row."""
    outputs, passes = [], []
    mask = model.mask_id
    for prompt in prompts:
        x = list(prompt) + [mask] * gen_length
        n, plen = len(x), len(prompt)
        length = torch.tensor([n])
        nfe = 0

        def context(keys: list[int]) -> torch.Tensor:
            return _context(model, torch.tensor([keys]), length)

        def layer2(token: int, h1: torch.Tensor) -> int:
            return (token * 13 + int(h1)) % model.contexts

        def logits(cols: list[int], h: torch.Tensor) -> torch.Tensor:
            tok = torch.tensor([[x[c] for c in cols]])
            return _logits(model, tok, torch.tensor([cols]), h, length)[0]

        def commit(rows: torch.Tensor, cols: list[int], eligible: list[int], quota: int | None) -> None:
            x0 = rows.argmax(-1)
            conf = torch.softmax(rows.double(), -1).gather(-1, x0[:, None])[:, 0]
            cand = [j for j, c in enumerate(cols) if c in eligible and x[c] == mask]
            ranked = sorted(cand, key=lambda j: -float(conf[j]))  # stable: lowest column first on ties
            if quota is not None:
                chosen = ranked[:quota]
            else:
                chosen = ranked[:1] + [j for j in ranked[1:] if float(conf[j]) >= threshold]
            for j in chosen:
                if int(x0[j]) != mask:
                    x[cols[j]] = int(x0[j])

        for b in range(gen_length // block_length):
            s, e = plen + b * block_length, plen + (b + 1) * block_length
            masks = sum(1 for c in range(s, e) if x[c] == mask)
            quotas = None
            if steps is not None:
                per = steps // (gen_length // block_length)
                quotas = [masks // per + (1 if i < masks % per else 0) for i in range(per)] + [n] * n
            # Block start: one full forward that fills the cache; its logits take the block's first step.
            keys1 = list(x)
            h1 = context(keys1)
            keys2 = [layer2(t, h1) for t in x]
            nfe += 1
            commit(logits(list(range(n)), context(keys2)), list(range(n)), list(range(plen, e)), quotas and quotas[0])
            i = 1
            while True:
                nfe += 1
                # prefix: the block and everything after it are fed; dual: the block only, whose fresh
                # keys replace the cached ones. Every other column attends from the cache.
                fed = list(range(s, n)) if mode == "prefix" else list(range(s, e))
                k1 = [x[c] if c in fed else keys1[c] for c in range(n)]
                h1 = context(k1)
                k2 = [layer2(x[c], h1) if c in fed else keys2[c] for c in range(n)]
                if mode == "dual":
                    keys1, keys2 = k1, k2
                commit(logits(fed, context(k2)), fed, list(range(s, e)), quotas and quotas[i])
                if all(x[c] != mask for c in range(s, e)):
                    break
                i += 1
        outputs.append(x[plen:])
        passes.append(nfe)
    return outputs, passes
