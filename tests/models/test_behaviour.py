"""Forward-pass behaviour: bidirectional attention, padding, Dream's shift, RoPE, precision."""

from __future__ import annotations

import math

import pytest
import torch

from daedal.core.adapter import ModelAdapter
from daedal.models import _layers
from daedal.models.llada import modeling as llada_modeling


def _row(adapter, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, adapter.vocab_size, (n,), generator=g)


def test_adapters_satisfy_the_protocol(adapter):
    assert isinstance(adapter, ModelAdapter)
    assert adapter.eos_id in adapter.eos_ids and len(adapter.eos_ids) == 2
    assert adapter.vocab_size >= len(adapter.tokenizer)
    assert adapter.device == torch.device("cpu") and adapter.dtype == torch.float32


def test_attention_is_bidirectional(adapter):
    tokens = _row(adapter, 10, 0)[None]
    changed = tokens.clone()
    changed[0, -1] = (changed[0, -1] + 1) % adapter.vocab_size
    length = torch.tensor([10])
    a, b = adapter.logits(tokens, length), adapter.logits(changed, length)
    # A later token changes the logits of the earliest slots (slot 1 for Dream: slot 0/1 both read row 0).
    assert not torch.allclose(a[0, 1], b[0, 1])
    assert not torch.allclose(a[0, 0], b[0, 0])


def test_padded_batch_equals_each_row_alone(adapter):
    lengths = [7, 12, 3]
    t = max(lengths)
    rows = [_row(adapter, n, i) for i, n in enumerate(lengths)]
    tokens = torch.full((len(rows), t), adapter.pad_id)
    for i, r in enumerate(rows):
        tokens[i, : len(r)] = r
    batch = adapter.logits(tokens, torch.tensor(lengths))
    assert batch.shape == (3, t, adapter.vocab_size)
    assert torch.isfinite(batch).all()  # padded query rows stay finite
    for i, r in enumerate(rows):
        alone = adapter.logits(r[None], torch.tensor([len(r)]))
        torch.testing.assert_close(batch[i, : len(r)], alone[0], atol=1e-5, rtol=1e-5)
    # The pad content is really ignored: other junk past the length changes nothing.
    junk = tokens.clone()
    junk[0, 7:] = adapter.mask_id
    torch.testing.assert_close(adapter.logits(junk, torch.tensor(lengths))[0, :7], batch[0, :7])


def test_dream_adapter_absorbs_the_shift(dream):
    tokens = torch.stack([_row(dream, 9, 1), _row(dream, 9, 2)])
    length = torch.tensor([9, 6])
    out = dream.logits(tokens, length)
    with torch.no_grad():
        raw = dream.model(tokens, attention_mask=torch.arange(9)[None] < length[:, None])
    torch.testing.assert_close(out[:, 0], raw[:, 0])
    torch.testing.assert_close(out[:, 1:], raw[:, :-1])
    assert not torch.allclose(out[:, 1:], raw[:, 1:])


def test_llada_adapter_does_not_shift(llada):
    tokens = _row(llada, 8, 4)[None]
    with torch.no_grad():
        raw = llada.model(tokens)
    torch.testing.assert_close(llada.logits(tokens, torch.tensor([8])), raw)


def test_rope_matches_complex_rotation():
    # Rotate-half layout: pair (x_j, x_{j+d/2}) is the complex number x_j + i x_{j+d/2},
    # turned by angle position * theta^(-2j/d).
    d, theta = 16, 500000.0
    pos = torch.tensor([0, 1, 5, 37])
    x = torch.randn(4, d)
    cos, sin = _layers.rope_angles(pos, d, theta)
    got = _layers.apply_rope(x, cos, sin)
    j = torch.arange(d // 2, dtype=torch.float64)
    angle = pos[:, None].double() * theta ** (-2 * j / d)
    z = torch.complex(x[:, : d // 2].double(), x[:, d // 2 :].double()) * torch.exp(1j * angle)
    want = torch.cat((z.real, z.imag), dim=-1).float()
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert torch.equal(got[0], x[0])  # position 0 is the identity


@pytest.mark.parametrize("family", ["llada", "dream"])
def test_rope_positions_are_relative_and_matter(family, request):
    adapter = request.getfixturevalue(family)
    model = adapter.model
    tokens = _row(adapter, 10, 5)[None]
    with torch.no_grad():
        base = model(tokens)
        default = model(tokens, position_ids=torch.arange(10))
        offset = model(tokens, position_ids=torch.arange(10)[None] + 100)
        reversed_ = model(tokens, position_ids=torch.arange(10).flip(0))
    assert torch.equal(base, default)  # default positions are 0..T-1
    # Bidirectional attention with RoPE depends only on relative positions.
    torch.testing.assert_close(offset, base, atol=2e-4, rtol=1e-4)
    assert not torch.allclose(reversed_, base, atol=1e-3)


def test_rms_norm_formula():
    x = torch.randn(3, 8, dtype=torch.bfloat16)
    w = torch.randn(8, dtype=torch.bfloat16)
    x32 = x.float()
    want = w * (x32 / torch.sqrt((x32**2).mean(-1, keepdim=True) + 1e-5)).to(torch.bfloat16)
    torch.testing.assert_close(_layers.rms_norm(x, w, 1e-5), want)


def test_reference_precision_equals_fp16_autocast_over_bf16_weights():
    torch.manual_seed(0)
    model = llada_modeling.LLaDAModelLM(llada_modeling.tiny_config(vocab_size=200, embedding_size=256))
    model = model.to(torch.bfloat16).eval()
    ids = torch.randint(0, 200, (2, 12))
    keep = torch.ones(2, 12, dtype=torch.bool)
    keep[1, 8:] = False
    residual_dtypes = []
    hook = model.model.transformer.blocks[1].register_forward_hook(lambda m, a, out: residual_dtypes.append(out.dtype))
    with torch.no_grad():
        model.set_precision("reference")
        emulated = model(ids, attention_mask=keep)
        model.set_precision("native")
        with torch.autocast("cpu", dtype=torch.float16):
            autocast = model(ids, attention_mask=keep)
        native = model(ids, attention_mask=keep)
    hook.remove()
    assert emulated.dtype == torch.float16 and native.dtype == torch.bfloat16
    assert residual_dtypes[0] == torch.float32  # fp32 residual stream after the first add
    # The explicit-cast emulation reproduces real autocast semantics.
    torch.testing.assert_close(emulated, autocast, atol=2e-3, rtol=2e-3)
    assert not torch.equal(emulated.float(), native.float())


def test_reference_precision_through_the_adapter(llada_dir):
    from daedal.models import LLaDA

    ref = LLaDA.from_pretrained(llada_dir, dtype="bfloat16", precision="reference")
    f32 = LLaDA.from_pretrained(llada_dir, dtype="float32")
    tokens = _row(f32, 10, 6)[None]
    out = ref.logits(tokens, torch.tensor([10]))
    assert ref.dtype == torch.float16 and out.dtype == torch.float16
    assert {p.dtype for p in ref.model.parameters()} == {torch.bfloat16}
    want = f32.logits(tokens, torch.tensor([10]))
    assert (out.float() - want).abs().max() < 0.05 * math.sqrt(want.abs().max().item() + 1)


def test_full_row_without_padding_builds_no_mask(llada, monkeypatch):
    seen = []
    real = _layers.attention

    def spy(q, k, v, mask, compute_dtype=None):
        seen.append(mask)
        return real(q, k, v, mask, compute_dtype)

    monkeypatch.setattr(_layers, "attention", spy)
    tokens = _row(llada, 6, 7)[None].repeat(2, 1)
    llada.logits(tokens, torch.tensor([6, 6]))
    assert seen and all(m is None for m in seen)
    seen.clear()
    llada.logits(tokens, torch.tensor([6, 4]))
    assert seen and all(m is not None and m.shape == (2, 1, 1, 6) for m in seen)
