"""The native models' session: logits where read, and cached passes that agree with full ones."""

from __future__ import annotations

import pytest
import torch

from daedal.core import Engine
from daedal.core.session import CachedSession
from daedal.models._session import NativeBackend


def _tokens(adapter, batch=2, width=24, seed=0):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(5, 200, (batch, width), generator=g)
    tokens[:, 12:] = adapter.mask_id
    return tokens


def test_logits_at_chosen_columns_equal_the_full_logits(adapter):
    tokens = _tokens(adapter)
    length = torch.tensor([24, 20])
    session = adapter.open_session()
    source = session.forward(tokens, length)
    full = adapter.logits(tokens, length).float()
    index = torch.tensor([[0, 5, 23], [1, 19, 3]])
    want = full.gather(1, index[..., None].expand(-1, -1, full.shape[-1]))
    assert torch.equal(source.at(index), want)
    ids = torch.tensor([adapter.eos_id, 7, 11])
    # A narrow product may round differently in the last bit: the EOS screen allows for it with a margin.
    torch.testing.assert_close(source.at(index, ids), want[..., ids], rtol=1e-5, atol=1e-6)
    assert torch.equal(source.dense(), full)


@pytest.mark.parametrize("mode", ["prefix", "dual"])
def test_a_cached_pass_over_an_unchanged_canvas_equals_the_full_pass(adapter, mode):
    # With the store filled from these very tokens, feeding a block must give the full pass's hidden states.
    tokens = _tokens(adapter, seed=1)
    length = torch.tensor([24, 21])
    backend = NativeBackend(adapter)
    hidden, store = backend.full(tokens, length, capture=True)
    start = torch.tensor([8, 10])
    stop = start + 4 if mode == "dual" else length
    width = int((stop - start).max())
    cols = (start[:, None] + torch.arange(width)).clamp(max=(stop - 1)[:, None])
    fed, _ = backend.partial(tokens, length, cols, store, write_back=mode == "dual")
    want = hidden.gather(1, cols[..., None].expand(-1, -1, hidden.shape[-1]))
    torch.testing.assert_close(fed, want, rtol=1e-5, atol=1e-5)
    fresh, _ = backend.full(tokens, length, capture=False)
    assert torch.equal(fresh, hidden)


def test_a_stale_store_changes_the_cached_pass(llada):
    # The converse: after the block changed, the cached pass differs from a full pass (the cache approximates).
    tokens = _tokens(llada, seed=2)
    length = torch.tensor([24, 24])
    backend = NativeBackend(llada)
    _, store = backend.full(tokens, length, capture=True)
    changed = tokens.clone()
    changed[:, 12:16] = 42
    cols = torch.arange(12, 16).expand(2, -1)
    fed, _ = backend.partial(changed, length, cols, store, write_back=True)
    full, _ = backend.full(changed, length, capture=False)
    assert not torch.allclose(fed, full[:, 12:16], atol=1e-4)


def test_after_an_insertion_the_shifted_keys_equal_a_fresh_computation(llada):
    # Daedal with the dual cache: after an insertion the stored keys moved with the canvas. The first
    # layer's keys (before RoPE) depend on the token alone, so a fresh computation on the new canvas
    # must give exactly the moved entries, and rotating them at their new columns is what a full pass does.
    from daedal.core import hookimpl
    from daedal.models import _layers
    from daedal.policies import Daedal

    seen = []

    class Spy:
        @hookimpl
        def on_event(self, event, state):  # type: ignore[no-untyped-def]
            if event.kind == "step-finished" and event.expand is not None and bool(event.expand.where.any()):
                from daedal.core.session import expansion_sources

                session = state.session
                # The store describes the canvas the step's pass saw: only the slots committed in this
                # very step carry a newer token (the next pass refreshes them); every other column,
                # moved or not, must match a fresh computation exactly.
                src = expansion_sources(event.expand.where, event.expand.factor, event.after.width)
                committed_now = event.unmask.where.gather(1, src)
                keep = event.after.valid & ~committed_now
                moved = event.after.columns != src
                seen.append((event.after.tokens.clone(), keep, keep & moved, [t.clone() for t in session.store]))

    daedal = Daedal(
        initial_gen_length=16,
        max_gen_length=64,
        block_length=8,
        eos_check_tokens=8,
        low_conf_threshold=0.9,
        expand_eos_confidence_threshold=1.0,
        eos_confidence_threshold=0.0,
        expansion_factor=4,
        cache="dual",
    )
    Engine(llada, [daedal, Spy()]).generate([[5, 6, 7, 8], [9, 10]])
    assert seen, "no insertion happened"
    block = llada.model.transformer.blocks[0]
    suffix_checked = 0
    for tokens, valid, moved, store in seen:
        with torch.no_grad():
            x = block.attn_norm(llada.model.transformer.wte(tokens))
            b, t, _ = x.shape
            k = _layers.linear(x, block.k_proj, None).view(b, t, block.n_kv_heads, block.head_dim).transpose(1, 2)
        suffix_checked += int(moved.sum())
        stored = store[0]
        assert stored.shape == k.shape
        assert torch.equal(stored[valid[:, None, :, None].expand_as(k)], k[valid[:, None, :, None].expand_as(k)])
        cos, sin = llada.model.key_angles(t, k.device)
        rotated = _layers.apply_rope(stored.float(), cos, sin)
        fresh = _layers.apply_rope(k.float(), cos, sin)
        assert torch.equal(rotated[valid[:, None, :, None].expand_as(k)], fresh[valid[:, None, :, None].expand_as(k)])
    assert suffix_checked > 0


def test_engine_runs_use_the_native_session(llada):
    from daedal.policies import LLaDADecoding

    sessions: list[CachedSession] = []
    real = llada.open_session

    def record(**kwargs):  # type: ignore[no-untyped-def]
        sessions.append(real(**kwargs))
        return sessions[-1]

    llada.open_session = record  # type: ignore[method-assign]
    try:
        Engine(llada, [LLaDADecoding(gen_length=16, steps=16, block_length=4, cache="dual")]).generate([[5, 6, 7]])
    finally:
        del llada.open_session
    (session,) = sessions
    assert session.passes == {"full": 4, "partial": 12} and session.closed


@pytest.mark.parametrize("mode", ["prefix", "dual"])
@pytest.mark.parametrize("decoder", ["llada", "fast-dllm"])
@pytest.mark.parametrize("prompts", [[[5, 6, 7]], [[5, 6, 7, 8], [9, 10], [11, 12, 13]]], ids=["batch1", "ragged"])
def test_native_caches_match_a_per_row_transcription_of_fast_dllm(adapter, mode, decoder, prompts):
    from daedal.policies import FastDllm, LLaDADecoding
    from tests.policies.oracles.cache_oracle import NativeOracle, cached_reference

    if decoder == "llada":
        policy = LLaDADecoding(gen_length=12, steps=12, block_length=4, cache=mode)
        params = dict(steps=12)
    else:
        policy = FastDllm(gen_length=12, block_length=4, threshold=0.02, cache=mode)
        params = dict(threshold=0.02)
    result = Engine(adapter, [policy]).generate(prompts)
    expected, passes = cached_reference(
        NativeOracle(adapter), prompts, gen_length=12, block_length=4, mode=mode, **params
    )
    assert result.tokens == expected
    assert result.stats.forward_passes == max(passes)


def test_the_bundled_model_cached_equals_the_per_row_transcription():
    # The trained checkpoint, on held-out prompts of several lengths in one ragged batch: the engine's
    # cached decoding is Fast-dLLM's cached loop token for token, so a change in accuracy under a cache
    # is the cache's approximation, not a defect of the engine.
    from daedal.models import bundled
    from daedal.models.bundled import tasks
    from daedal.policies import LLaDADecoding
    from tests.policies.oracles.cache_oracle import NativeOracle, cached_reference

    adapter = bundled.load()
    data = tasks.heldout_set(8)
    # a short prompt and long ones of every family, where the cache tends to change the answer
    prompts = Engine(adapter, []).encode([data[i]["prompt"] for i in (0, 13, 14, 21, 28, 31)])
    plain = Engine(adapter, [LLaDADecoding(gen_length=32, steps=32, block_length=8)]).generate(prompts)
    changed = 0
    for mode in ("prefix", "dual"):
        policy = LLaDADecoding(gen_length=32, steps=32, block_length=8, cache=mode)
        result = Engine(adapter, [policy]).generate(prompts)
        expected, passes = cached_reference(
            NativeOracle(adapter), prompts, gen_length=32, block_length=8, mode=mode, steps=32
        )
        assert result.tokens == expected
        assert result.stats.forward_passes == max(passes)
        changed += sum(a != b for a, b in zip(plain.tokens, expected, strict=True))
    # The cache changed some answer, so the comparison could fail; a new checkpoint may need other prompts.
    assert changed > 0, "the cache changed none of these answers: pick held-out prompts where it does"


@pytest.mark.parametrize("write_back", [False, True], ids=["prefix", "dual"])
def test_keeping_the_rotated_keys_changes_no_bit(adapter, write_back):
    # A cached pass rotates only the fed keys and reuses the store's rotated keys; rotating the whole
    # store every pass (no rotated cache) must give the very same hidden states and store.
    import gc

    tokens = _tokens(adapter, seed=4)
    length = torch.tensor([24, 22])
    kept, plain = NativeBackend(adapter), NativeBackend(adapter)
    plain.rotated = None
    _, store_a = kept.full(tokens, length, capture=True)
    _, store_b = plain.full(tokens, length, capture=True)
    assert len(kept.rotated) == len(store_a) // 2  # the capture pass handed over its rotated keys
    for step, (start, width) in enumerate([(12, 4), (14, 6), (12, 8)]):
        tokens = tokens.clone()
        tokens[:, start + step] = 40 + step  # the canvas changes between passes, as a block fills
        cols = (torch.tensor([start, start - 2])[:, None] + torch.arange(width)).clamp(max=21)
        fed_a, store_a = kept.partial(tokens, length, cols, store_a, write_back=write_back)
        fed_b, store_b = plain.partial(tokens, length, cols, store_b, write_back=write_back)
        assert torch.equal(fed_a, fed_b)
        assert all(torch.equal(a, b) for a, b in zip(store_a, store_b, strict=True))
    moved = [t.flip(2) for t in store_a]  # a shifted store is a new tensor: its rotation is recomputed
    assert kept.rotated.get(0, moved[0]) is None and kept.rotated.get(0, store_a[0]) is not None
    del store_a, moved
    gc.collect()
    assert len(kept.rotated) == 0  # the rotated keys go with the store they belong to


def test_writing_columns_equals_a_scatter():
    from daedal.models._layers import write_columns

    g = torch.Generator().manual_seed(0)
    cols = torch.tensor([[3, 4, 5], [0, 7, 2]])
    src = torch.randn(2, 4, 3, 8, generator=g)
    for layout in ("projection", "contiguous"):
        base = torch.randn(2, 9, 4, 8, generator=g).transpose(1, 2)  # [B, H, T, D] over [B, T, H, D] memory
        if layout == "contiguous":
            base = base.contiguous()
        assert base.clone().transpose(1, 2).is_contiguous() == (layout == "projection")  # both paths run
        want = base.scatter(2, cols[:, None, :, None].expand(-1, 4, -1, 8), src)
        got = write_columns(base.clone(), cols, src)
        assert torch.equal(got, want)
