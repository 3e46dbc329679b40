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


def _logits(
    model: ToyModel, tok: torch.Tensor, col: torch.Tensor, h: torch.Tensor, length: torch.Tensor
) -> torch.Tensor:
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


class ToyOracle:
    """The cacheable toy as the oracle sees it: a full pass and a cached pass over one row."""

    def __init__(self, model: CacheToy) -> None:
        self.model = model
        self.mask_id = model.mask_id

    def full(self, x: list[int]) -> tuple[torch.Tensor, list[list[int]]]:
        n = len(x)
        h1 = self._context(x, n)
        keys2 = [(t * 13 + int(h1)) % self.model.contexts for t in x]
        return self._logits(x, list(range(n)), self._context(keys2, n), n), [list(x), keys2]

    def cached(self, x: list[int], fed: list[int], store: list[list[int]], write_back: bool):  # type: ignore[no-untyped-def]
        n = len(x)
        keys1 = [x[c] if c in fed else store[0][c] for c in range(n)]
        h1 = self._context(keys1, n)
        keys2 = [(x[c] * 13 + int(h1)) % self.model.contexts if c in fed else store[1][c] for c in range(n)]
        logits = self._logits(x, fed, self._context(keys2, n), n)
        return logits, ([keys1, keys2] if write_back else store)

    def _context(self, keys: list[int], n: int) -> torch.Tensor:
        return _context(self.model, torch.tensor([keys]), torch.tensor([n]))

    def _logits(self, x: list[int], cols: list[int], h: torch.Tensor, n: int) -> torch.Tensor:
        tok = torch.tensor([[x[c] for c in cols]])
        width = len(cols)
        return _logits(self.model, tok, torch.tensor([cols]), h.expand(1, width), torch.tensor([n]).expand(1, width))[0]


def cached_reference(
    model: object,
    prompts: list[list[int]],
    *,
    gen_length: int,
    block_length: int,
    mode: str,
    steps: int | None = None,
    threshold: float | None = None,
) -> tuple[list[list[int]], list[int]]:
    """Per row: Fast-dLLM's cached generation. Returns the generated ids and the forward passes of each row.

    ``model`` is a :class:`CacheToy` or an object with ``mask_id``, ``full(x) -> (logits, store)``
    and ``cached(x, fed, store, write_back) -> (logits of the fed columns, store)``.
    """
    oracle = ToyOracle(model) if isinstance(model, CacheToy) else model
    outputs, passes = [], []
    mask = oracle.mask_id  # type: ignore[attr-defined]
    for prompt in prompts:
        x = list(prompt) + [mask] * gen_length
        n, plen = len(x), len(prompt)
        nfe = 0

        def commit(
            rows: torch.Tensor, cols: list[int], eligible: list[int], quota: int | None, x: list[int] = x
        ) -> None:
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
            logits, store = oracle.full(list(x))  # type: ignore[attr-defined]
            nfe += 1
            commit(logits, list(range(n)), list(range(plen, e)), quotas and quotas[0])
            i = 1
            while True:
                nfe += 1
                # prefix: the block and everything after it are fed; dual: the block only, whose fresh
                # entries replace the cached ones. Every other column attends from the cache.
                fed = list(range(s, n)) if mode == "prefix" else list(range(s, e))
                logits, store = oracle.cached(list(x), fed, store, mode == "dual")  # type: ignore[attr-defined]
                commit(logits, fed, list(range(s, e)), quotas and quotas[i])
                if all(x[c] != mask for c in range(s, e)):
                    break
                i += 1
        outputs.append(x[plen:])
        passes.append(nfe)
    return outputs, passes


class NativeOracle:
    """A native LLaDA or Dream model, one row at a time, with a plain per-layer key/value cache.

    Written straight from the architecture (norm, q/k/v, RoPE at absolute columns, attention,
    output projection, MLP), not from the engine's session: the cache is a list of per-layer
    ``(keys before RoPE, values)`` of every column, and a cached pass recomputes only the fed
    columns. The last hidden state of every column is kept too (Dream's column ``c`` reads
    row ``c - 1``, which a cached pass may not have fed).
    """

    def __init__(self, adapter) -> None:  # type: ignore[no-untyped-def]
        from daedal.models.dream.modeling import DreamModel

        self.model = adapter.model
        self.mask_id = adapter.mask_id
        self.dream = isinstance(self.model, DreamModel)
        self.vocab_size = adapter.vocab_size

    def _layers(self):  # type: ignore[no-untyped-def]
        m = self.model
        if self.dream:
            return [
                (
                    l.input_layernorm,
                    l.self_attn,
                    l.self_attn.o_proj,
                    l.post_attention_layernorm,
                    lambda y, l=l: l.mlp(y, None),
                )
                for l in m.model.layers
            ]
        return [
            (b.attn_norm, b, b.attn_out, b.ff_norm, lambda y, b=b: swiglu(y, b.ff_proj, b.up_proj, b.ff_out, None))
            for b in m.transformer.blocks
        ]

    def _pass(self, x: list[int], fed: list[int], store):  # type: ignore[no-untyped-def]
        from daedal.models._layers import apply_rope, repeat_kv, rope_angles

        m = self.model
        ids = torch.tensor([[x[c] for c in fed]])
        h = (m.model.embed_tokens if self.dream else m.transformer.wte)(ids)
        head_dim = m.config.attn_head_dim if self.dream else m.config.head_dim
        theta = m.config.rope_theta
        q_cos, q_sin = rope_angles(torch.tensor(fed), head_dim, theta)
        k_cos, k_sin = rope_angles(torch.arange(len(x)), head_dim, theta)
        if self.dream:
            q_cos, q_sin, k_cos, k_sin = (t.to(h.dtype) for t in (q_cos, q_sin, k_cos, k_sin))
        new_store = []
        for i, (norm, attn, out, norm2, mlp) in enumerate(self._layers()):
            y = norm(h)
            n_heads, n_kv = attn.n_heads, attn.n_kv_heads
            q = attn.q_proj(y).view(1, len(fed), n_heads, head_dim).transpose(1, 2)
            k = attn.k_proj(y).view(1, len(fed), n_kv, head_dim).transpose(1, 2)
            v = attn.v_proj(y).view(1, len(fed), n_kv, head_dim).transpose(1, 2)
            if store is None:
                keys, values = k, v
            else:
                keys, values = store[i][0].clone(), store[i][1].clone()
                keys[:, :, fed] = k
                values[:, :, fed] = v
            new_store.append((keys, values))
            if self.dream:
                qr, kr = apply_rope(q, q_cos, q_sin), apply_rope(keys, k_cos, k_sin)
            else:
                qr = apply_rope(q.float(), q_cos, q_sin).to(q.dtype)
                kr = apply_rope(keys.float(), k_cos, k_sin).to(keys.dtype)
            rep = n_heads // n_kv
            o = torch.nn.functional.scaled_dot_product_attention(qr, repeat_kv(kr, rep), repeat_kv(values, rep))
            h = h + out(o.transpose(1, 2).reshape(1, len(fed), n_heads * head_dim))
            h = h + mlp(norm2(h))
        final = m.model.norm(h) if self.dream else m.transformer.ln_f(h)
        return final[0], new_store

    def _logits(self, hidden: torch.Tensor, cols: list[int]) -> torch.Tensor:
        rows = [max(c - 1, 0) if self.dream else c for c in cols]
        return self.model.head(hidden[rows]).float()

    @torch.inference_mode()
    def full(self, x: list[int]):  # type: ignore[no-untyped-def]
        hidden, kv = self._pass(x, list(range(len(x))), None)
        return self._logits(hidden, list(range(len(x)))), (kv, hidden)

    @torch.inference_mode()
    def cached(self, x: list[int], fed: list[int], store, write_back: bool):  # type: ignore[no-untyped-def]
        kv, hidden = store
        fresh, new_kv = self._pass(x, fed, kv)
        hidden = hidden.clone()
        hidden[fed] = fresh
        return self._logits(hidden, fed), ((new_kv if write_back else kv), hidden)


def swiglu(y, gate, up, down, compute_dtype):  # type: ignore[no-untyped-def]
    from daedal.models._layers import swiglu as layer

    return layer(y, gate, up, down, compute_dtype)
