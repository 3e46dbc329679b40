"""Numerical building blocks shared by the LLaDA and Dream implementations.

Both families use the same RMSNorm formula, rotate-half RoPE, SwiGLU MLP and
bidirectional SDPA attention; they differ in where RoPE runs (fp32 for LLaDA,
activation dtype for Dream), in biases and in GQA.

**Reference precision.** The official DAEDAL run wraps generation in
``torch.autocast("cuda")`` with its default fp16 over bf16 weights. That is emulated
here without autocast (so it also runs on CPU): when ``compute_dtype`` is fp16, every
linear casts its input and weight to fp16, and the rest follows from PyTorch's type
promotion exactly as under autocast: the embedding output is bf16, the first residual
add ``bf16 + fp16`` promotes to fp32 and the residual stream stays fp32, norms compute
in fp32 and multiply by the bf16 weight (promoting to the input's dtype), and the LM head
yields fp16 logits.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
import torch.nn.functional as F

from daedal.core.errors import ConfigError


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """``w * to_input_dtype(x32 * rsqrt(mean(x32^2) + eps))``: statistics in fp32, weight after the cast."""
    og = x.dtype
    x32 = x.float()
    y = (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(og)
    return y if weight is None else weight * y


class RMSNorm(torch.nn.Module):
    """RMSNorm with a learned scale and no bias."""

    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)

    def reset_parameters(self) -> None:
        torch.nn.init.ones_(self.weight)


def linear(x: torch.Tensor, layer: torch.nn.Linear, compute_dtype: torch.dtype | None) -> torch.Tensor:
    """``layer(x)``, with input and weights cast to ``compute_dtype`` when one is set (autocast emulation)."""
    if compute_dtype is None:
        return F.linear(x, layer.weight, layer.bias)
    bias = None if layer.bias is None else layer.bias.to(compute_dtype)
    return F.linear(x.to(compute_dtype), layer.weight.to(compute_dtype), bias)


def rope_angles(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 ``(cos, sin)`` for ``positions`` (any shape ``[...]``) -> ``[..., head_dim]``.

    ``inv_freq_j = theta^(-2j/head_dim)``; the ``head_dim/2`` angles are duplicated
    (``[θ, θ]``) to match the rotate-half form.
    """
    inv_freq = 1.0 / (
        theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=positions.device).float() / head_dim)
    )
    freqs = positions.float()[..., None] * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``[x1, x2] -> [-x2, x1]`` over the last dimension (NeoX / Llama form)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x * cos + rotate_half(x) * sin`` in the dtype of ``x`` (cos/sin must match it)."""
    return x * cos + rotate_half(x) * sin


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """``[B, Hkv, T, D] -> [B, Hkv * n_rep, T, D]``, each KV head repeated ``n_rep`` times in a row."""
    if n_rep == 1:
        return x
    b, h, t, d = x.shape
    return x[:, :, None].expand(b, h, n_rep, t, d).reshape(b, h * n_rep, t, d)


def key_padding_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """``[B, T]`` keep-mask (True/1 = attend) -> SDPA boolean mask ``[B, 1, 1, T]``, or None.

    A row with no attended key would give NaN (softmax over nothing); such rows are let
    attend everything instead, which keeps them finite. Their outputs are meaningless
    by construction and never read.
    """
    if attention_mask is None:
        return None
    keep = attention_mask.to(torch.bool)
    keep = keep | ~keep.any(dim=-1, keepdim=True)
    return keep[:, None, None, :]


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    compute_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Non-causal SDPA over ``[B, H, T, D]`` inputs with an optional boolean key mask.

    With a ``compute_dtype`` (autocast emulation) q, k and v are cast to it first, as
    autocast does for ``scaled_dot_product_attention``.
    """
    if compute_dtype is not None:
        q, k, v = q.to(compute_dtype), k.to(compute_dtype), v.to(compute_dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0, is_causal=False)


PRECISIONS = ("native", "reference")


def compute_dtype_for(precision: str) -> torch.dtype | None:
    """Linear compute dtype implied by a precision mode (None = the weights' own dtype)."""
    return torch.float16 if precision == "reference" else None


def init_weights(model: torch.nn.Module, std: float) -> None:
    """Initialise for training: N(0, std) linear and embedding matrices, zero biases, unit norm scales."""
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=std)
            bias = getattr(module, "bias", None)
            if isinstance(bias, torch.Tensor):
                torch.nn.init.zeros_(bias)
        elif isinstance(module, RMSNorm):
            module.reset_parameters()


def rope_and_mask(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    *,
    head_dim: int,
    theta: float,
    precision: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.dtype | None]:
    """What every layer of a forward pass shares: fp32 ``(cos, sin)``, the key mask and the compute dtype.

    Args:
        input_ids: ``[B, T]`` token ids.
        attention_mask: ``[B, T]`` keep-mask or None (see :func:`key_padding_mask`).
        position_ids: ``[B, T]`` or ``[T]`` RoPE positions; None means ``0..T-1``.
        head_dim: Width of one attention head.
        theta: RoPE base.
        precision: ``"native"`` or ``"reference"`` (see :func:`compute_dtype_for`).

    Returns:
        ``(cos, sin, mask, compute_dtype)``; per-batch positions give ``[B, 1, T, D]`` angles
        that broadcast over heads.
    """
    if position_ids is None:
        position_ids = torch.arange(input_ids.shape[-1], device=input_ids.device)
    cos, sin = rope_angles(position_ids, head_dim, theta)
    if cos.dim() == 3:  # [B, T, D] -> [B, 1, T, D] to broadcast over heads
        cos, sin = cos[:, None], sin[:, None]
    return cos, sin, key_padding_mask(attention_mask), compute_dtype_for(precision)


class KVPass:
    """How one forward pass uses a session's per-layer store of pre-RoPE keys and values.

    * ``capture``: a full pass; every layer's keys and values (before RoPE, so they survive a
      shift of positions) are stored for later passes.
    * ``partial``: only the columns ``cols`` (``[B, L]``) are fed; each layer attends to the
      stored keys/values of every other column and the fresh ones of the fed columns, whose
      queries are rotated at their own columns and the keys at ``0..T-1``. With
      ``write_back`` (the dual cache) the fresh entries replace the stored ones, in place.

    Rotating the stored keys is the same for every pass over an unchanged store, so with a
    ``rotated`` cache each layer's rotated keys are computed once per store (a capture pass
    hands over the ones it rotated anyway) and only the fed columns are rotated afterwards;
    the values are the ones a rotation of the whole store gives, element for element.

    Args:
        store: Per layer ``[k, v]``, each ``[B, Hkv, T, D]`` (filled by a capture pass).
        mode: ``"capture"`` or ``"partial"``.
        cols: ``[B, L]`` fed columns (partial passes).
        write_back: Keep the fresh entries in the store.
        rotated: The session's :class:`RotatedKeys` (None: rotate the whole store every pass).
    """

    def __init__(
        self,
        store: list[list[torch.Tensor]],
        mode: str,
        cols: torch.Tensor | None = None,
        *,
        write_back: bool = False,
        rotated: RotatedKeys | None = None,
    ) -> None:
        self.store = store
        self.mode = mode
        self.cols = cols
        self.write_back = write_back
        self.rotated = rotated
        self.key_cos: torch.Tensor | None = None
        self.key_sin: torch.Tensor | None = None
        self.key_mask: torch.Tensor | None = None
        self._rows: torch.Tensor | None = None

    def layer(self, i: int) -> LayerKV:
        return LayerKV(self, i)

    def rows(self, width: int) -> torch.Tensor:
        """``[B * L]`` the fed columns as rows of a ``[B * T, ...]`` store (the same for every layer)."""
        if self._rows is None:
            assert self.cols is not None
            b = self.cols.shape[0]
            self._rows = (self.cols + torch.arange(b, device=self.cols.device)[:, None] * width).flatten()
        return self._rows


class RotatedKeys:
    """Per layer, the RoPE-rotated keys of one stored key tensor, kept while that tensor lives.

    An entry belongs to a tensor *object*: a store that was shifted or re-gathered is a new
    object and misses, and one updated in place (a dual-cache write-back) is updated here in
    the same pass. The cache holds the tensor weakly, so a closed session frees both.
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[torch.Tensor], torch.Tensor]] = {}

    def get(self, layer: int, stored: torch.Tensor) -> torch.Tensor | None:
        entry = self._entries.get(layer)
        return entry[1] if entry is not None and entry[0]() is stored else None

    def put(self, layer: int, stored: torch.Tensor, rotated: torch.Tensor) -> None:
        def drop(ref: weakref.ref[torch.Tensor], layer: int = layer) -> None:
            entry = self._entries.get(layer)
            if entry is not None and entry[0] is ref:
                del self._entries[layer]

        self._entries[layer] = (weakref.ref(stored, drop), rotated)

    def __len__(self) -> int:
        return len(self._entries)


class LayerKV:
    """One layer's view of a :class:`KVPass`."""

    def __init__(self, owner: KVPass, i: int) -> None:
        self.owner = owner
        self.i = i

    def merge(
        self,
        k: torch.Tensor,
        v: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        rotate: Any,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(rotated keys, values, key_mask)`` this layer attends to; ``rotate(x, cos, sin)`` is the family's RoPE."""
        owner = self.owner
        if owner.mode == "capture":
            while len(owner.store) <= self.i:
                owner.store.append([])
            owner.store[self.i] = [k, v]
            keys = rotate(k, cos, sin)
            if owner.rotated is not None:
                owner.rotated.put(self.i, k, keys)  # a full pass rotates at 0..T-1, as later passes would
            return keys, v, mask
        stored_k, stored_v = owner.store[self.i]
        assert owner.cols is not None and owner.key_cos is not None and owner.key_sin is not None
        cols = owner.cols
        rows = owner.rows(stored_k.shape[2])
        if k.dtype != stored_k.dtype or v.dtype != stored_v.dtype:
            k, v = k.to(stored_k.dtype), v.to(stored_v.dtype)
        rotated = None if owner.rotated is None else owner.rotated.get(self.i, stored_k)
        if rotated is None:
            if owner.rotated is None:  # no cache: rotate the merged store as a whole
                keys = write_columns(stored_k.clone(), cols, k, rows)
                values = write_columns(stored_v.clone(), cols, v, rows)
                if owner.write_back:
                    owner.store[self.i] = [keys, values]
                return rotate(keys, owner.key_cos, owner.key_sin), values, owner.key_mask
            rotated = rotate(stored_k, owner.key_cos, owner.key_sin)
            owner.rotated.put(self.i, stored_k, rotated)
        # The fed keys at their own columns, with the very angles a whole-store rotation uses there.
        fresh = rotate(k, owner.key_cos[cols][:, None], owner.key_sin[cols][:, None])
        if owner.write_back:
            write_columns(stored_k, cols, k, rows)
            write_columns(stored_v, cols, v, rows)
            return write_columns(rotated, cols, fresh, rows), stored_v, owner.key_mask
        keys = write_columns(rotated.clone(), cols, fresh, rows)
        return keys, write_columns(stored_v.clone(), cols, v, rows), owner.key_mask


def write_columns(
    dst: torch.Tensor, cols: torch.Tensor, src: torch.Tensor, flat: torch.Tensor | None = None
) -> torch.Tensor:
    """``dst[b, :, cols[b, j]] = src[b, :, j]`` in place (``[B, H, T, D]`` and ``[B, H, L, D]``); returns ``dst``.

    A store laid out as a projection's output (``[B, T, H, D]`` in memory, viewed as
    ``[B, H, T, D]``; so is its clone) takes whole ``H * D`` rows at once, several times
    faster than a scatter along the column axis. ``flat`` is ``cols`` as such rows
    (``cols[b, j] + b * T``, flattened), when already computed.
    """
    b, h, t, d = dst.shape
    rows = dst.transpose(1, 2)
    if rows.is_contiguous():
        if flat is None:
            flat = (cols + torch.arange(b, device=cols.device)[:, None] * t).flatten()
        rows.view(b * t, h * d).index_copy_(0, flat, src.transpose(1, 2).reshape(-1, h * d))
    else:
        dst.scatter_(2, cols[:, None, :, None].expand(-1, h, -1, d), src)
    return dst


def rope_full_precision(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE computed in fp32 and cast back to the dtype of ``x`` (LLaDA's ``rope_full_precision``)."""
    if x.dtype == torch.float32:  # the casts would be no-ops (that still cost a dispatch each)
        return apply_rope(x, cos, sin)
    return apply_rope(x.float(), cos, sin).to(x.dtype)


def self_attention(
    module: Any,
    x: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    mask: torch.Tensor | None,
    compute_dtype: torch.dtype | None,
    *,
    rope_fp32: bool,
    kv: LayerKV | None = None,
) -> torch.Tensor:
    """Bidirectional GQA attention up to (not including) the output projection.

    Args:
        module: Holds ``q_proj``, ``k_proj``, ``v_proj`` (linears) and ``n_heads``,
            ``n_kv_heads``, ``head_dim``.
        x: ``[B, T, C]`` (already normed) hidden states.
        cos: RoPE cosines from :func:`rope_and_mask`.
        sin: RoPE sines.
        mask: SDPA key mask or None.
        compute_dtype: Linear/attention compute dtype (None = the weights' own).
        rope_fp32: Rotate in fp32 and cast back (LLaDA's ``rope_full_precision``);
            otherwise rotate in the activation dtype (cos/sin must match it).
        kv: This layer's view of a cached pass (None: plain attention over ``x``).

    Returns:
        ``[B, T, n_heads * head_dim]``.
    """
    b, t, _ = x.shape
    n_heads, n_kv_heads, head_dim = module.n_heads, module.n_kv_heads, module.head_dim
    q = linear(x, module.q_proj, compute_dtype).view(b, t, n_heads, head_dim).transpose(1, 2)
    k = linear(x, module.k_proj, compute_dtype).view(b, t, n_kv_heads, head_dim).transpose(1, 2)
    v = linear(x, module.v_proj, compute_dtype).view(b, t, n_kv_heads, head_dim).transpose(1, 2)
    rotate = rope_full_precision if rope_fp32 else apply_rope
    q = rotate(q, cos, sin)
    if kv is not None:
        k, v, mask = kv.merge(k, v, cos, sin, mask, rotate)
    else:
        k = rotate(k, cos, sin)
    rep = n_heads // n_kv_heads
    o = attention(q, repeat_kv(k, rep), repeat_kv(v, rep), mask, compute_dtype)
    return o.transpose(1, 2).reshape(b, t, n_heads * head_dim)


def swiglu(
    x: torch.Tensor,
    gate: torch.nn.Linear,
    up: torch.nn.Linear,
    down: torch.nn.Linear,
    compute_dtype: torch.dtype | None,
) -> torch.Tensor:
    """``down(silu(gate(x)) * up(x))``."""
    return linear(F.silu(linear(x, gate, compute_dtype)) * linear(x, up, compute_dtype), down, compute_dtype)


class NativeModel(torch.nn.Module):
    """Base of the native models: precision mode, and dtype / device of the token embedding.

    Attributes:
        precision: ``"native"`` or ``"reference"`` (see the module docstring).
    """

    precision: str

    def _token_embedding(self) -> torch.nn.Embedding:
        raise NotImplementedError

    @property
    def dtype(self) -> torch.dtype:
        return self._token_embedding().weight.dtype

    @property
    def device(self) -> torch.device:
        return self._token_embedding().weight.device

    def set_precision(self, precision: str) -> None:
        """Switch between ``"native"`` and ``"reference"`` numerics (see the module docstring)."""
        if precision not in PRECISIONS:
            raise ConfigError(f"precision={precision!r} is not a precision mode; pass one of {list(PRECISIONS)}.")
        self.precision = precision

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
