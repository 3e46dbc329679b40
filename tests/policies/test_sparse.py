"""Sparse logits: every policy decides exactly as on the dense path, and no [B, T, V] tensor is made."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daedal.core import Engine, hookimpl
from daedal.core.prediction import Prediction
from daedal.core.session import DenseSource
from daedal.core.testing import FakeAdapter
from daedal.policies import (
    Budget,
    ClassifierFreeGuidance,
    Daedal,
    DreamDecoding,
    FastDllm,
    LLaDADecoding,
    Refine,
    SuppressTokens,
    TopPTopK,
)
from daedal.policies import eos as eos_module
from daedal.policies.eos import eos_confidence, eos_confidence_of
from tests.policies.oracles.cache_oracle import CachedToyAdapter, CacheToy


class Dense:
    """A predict wrapper that declares no reads: the engine then computes every column (the dense path)."""

    @hookimpl(wrapper=True)
    def predict(self, state):  # type: ignore[no-untyped-def]
        return (yield)


def _decoders(block: int, eos_window: int) -> list[list[object]]:
    daedal = dict(
        initial_gen_length=8,
        max_gen_length=40,
        block_length=block,
        eos_check_tokens=eos_window,
        expansion_factor=4,
        low_conf_threshold=0.2,
        high_conf_threshold=0.6,
    )
    return [
        [Daedal(**daedal)],
        [Daedal(**daedal, reference_compat=True)],
        [Daedal(**daedal, cfg_scale=1.0)],
        [Daedal(**daedal), Refine(iterations=1, tokens=2, scope="block")],
        [Daedal(**daedal), SuppressTokens(ids=[3, 4])],
        [Daedal(**daedal), Budget(max_forward_passes=9)],
        [LLaDADecoding(gen_length=16, steps=16, block_length=block)],
        [LLaDADecoding(gen_length=16, steps=8, block_length=block, remasking="random")],
        [LLaDADecoding(gen_length=16, steps=16, block_length=block, temperature=0.7)],
        [LLaDADecoding(gen_length=16, steps=16, block_length=block, cfg_scale=0.5), TopPTopK(top_k=5)],
        [FastDllm(gen_length=16, block_length=block, threshold=0.5)],
        [FastDllm(gen_length=16, block_length=block, threshold=None, factor=1.0)],
        [DreamDecoding(max_new_tokens=12, steps=6, alg="maskgit_plus")],
        [ClassifierFreeGuidance(scale=1.0)],
    ]


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 50),
    batch=st.integers(1, 4),
    block=st.sampled_from([4, 8]),
    eos_window=st.sampled_from([2, 4, 8]),
    data=st.data(),
)
def test_sparse_decisions_equal_the_dense_path_for_every_policy(seed, batch, block, eos_window, data):
    model = CacheToy(vocab_size=24, seed=seed, sharpness=1.5, eos_gain=3.0, eos_length=30.0)
    prompts = [data.draw(st.lists(st.integers(3, 20), min_size=1, max_size=6)) for _ in range(batch)]
    sparse_adapter = CachedToyAdapter(model)
    dense_adapter = FakeAdapter(vocab_size=model.vocab_size, logits_fn=model)
    for policies in _decoders(block, eos_window):
        sparse = Engine(sparse_adapter, policies).generate(prompts, seed=seed)
        dense = Engine(dense_adapter, [*policies, Dense()]).generate(prompts, seed=seed)
        assert sparse.tokens == dense.tokens, policies
        assert sparse.lengths == dense.lengths, policies
        assert sparse.stats.forward_passes == dense.stats.forward_passes, policies


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    batch=st.integers(1, 5),
    width=st.integers(2, 90),
    window=st.integers(1, 12),
    density=st.floats(0.0, 0.6),
    covered=st.floats(0.0, 0.5),
    seed=st.integers(0, 10_000),
)
def test_the_eos_scan_on_a_sparse_prediction_equals_the_dense_one(batch, width, window, density, covered, seed):
    g = torch.Generator().manual_seed(seed)
    vocab, eos_id = 30, 1
    logits = torch.randn(batch, width, vocab, generator=g)
    # Make EOS the argmax at a random subset of columns, most of them far from the tail.
    hot = torch.rand(batch, width, generator=g) < density
    logits[..., eos_id] = torch.where(hot, logits.amax(-1) + torch.rand(batch, width, generator=g), logits[..., eos_id])
    start = torch.randint(0, width // 2 + 1, (batch,), generator=g)
    end = torch.maximum(start + 1, torch.randint(width // 2, width + 1, (batch,), generator=g)).clamp(max=width)
    reads = torch.rand(batch, width, generator=g) < covered
    sparse = Prediction.from_source(DenseSource(logits), reads)
    dense = Prediction.greedy(logits)
    want = eos_confidence(logits, eos_id=eos_id, start=start, end=end, window=window)
    got = eos_confidence_of(sparse, eos_id=eos_id, start=start, end=end, window=window)
    assert torch.equal(got, want)
    assert torch.equal(eos_confidence_of(dense, eos_id=eos_id, start=start, end=end, window=window), want)


def test_the_eos_scan_walks_back_past_the_tail_chunk(monkeypatch):
    # EOS is the argmax only near the prompt: the scan must extend chunk after chunk to find them.
    vocab, eos_id, width, window = 20, 1, 200, 4
    logits = torch.zeros(1, width, vocab)
    logits[0, :, 5] = 1.0
    logits[0, 10:14, eos_id] = 3.0
    calls = []
    real = eos_module._resolve

    def spy(*args):  # type: ignore[no-untyped-def]
        calls.append(int(args[1].sum()))
        return real(*args)

    monkeypatch.setattr(eos_module, "_resolve", spy)
    sparse = Prediction.from_source(DenseSource(logits), torch.zeros(1, width, dtype=torch.bool))
    start, end = torch.tensor([2]), torch.tensor([width])
    got = eos_confidence_of(sparse, eos_id=eos_id, start=start, end=end, window=window)
    assert torch.equal(got, eos_confidence(logits, eos_id=eos_id, start=start, end=end, window=window))
    assert got.item() > 0.4  # the four EOS columns near the prompt were found
    assert len(calls) >= 3 and sum(calls) == width - 2  # chunks of 8, 16, 32, ... down to the prompt


def _widths(adapter: CachedToyAdapter) -> list[tuple[int, int]]:
    return [h for s in adapter.sessions for h in s.backend.heads]


def test_no_whole_canvas_logits_unless_a_policy_asks():
    model = CacheToy(vocab_size=24, seed=2, sharpness=1.5)
    prompts = [[5, 6, 7], [8, 9]]
    for policies in _decoders(4, 4)[:-2]:  # all but Dream's and the guidance-only run (whole canvas)
        if any(getattr(p, "temperature", 0) for p in policies):
            continue  # temperature sampling draws noise over every column: it reads the whole canvas
        adapter = CachedToyAdapter(model)
        result = Engine(adapter, policies).generate(prompts)
        widest = result.canvas.width
        assert all(k < widest for _, k in _widths(adapter)), policies
    adapter = CachedToyAdapter(model)
    result = Engine(adapter, [DreamDecoding(max_new_tokens=8, steps=4)]).generate(prompts)
    assert (2, result.canvas.width) in _widths(adapter)  # Dream reads the whole canvas: the check can fail


def test_a_sparse_prediction_refuses_whole_canvas_reads():
    import pytest

    from daedal.core import PolicyError

    logits = torch.randn(2, 6, 10)
    sparse = Prediction.from_source(DenseSource(logits), torch.tensor([[0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0]]).bool())
    with pytest.raises(PolicyError, match="prediction_reads"):
        sparse.logits  # noqa: B018
    assert sparse.values.shape == (2, 2, 10)
    assert torch.equal(sparse.tokens[0, 1:3], logits[0, 1:3].argmax(-1))
    assert sparse.tokens[0, 0] == -1 and torch.isnan(sparse.confidence[0, 0])
    assert torch.equal(sparse.confidence[1, 3], torch.softmax(logits[1, 3], -1).max())


def test_the_final_fill_reads_every_mask():
    # A run cut short by max_steps ends with the engine's final fill: it must compute every masked column.
    from daedal.core import EngineConfig

    model = CacheToy(vocab_size=24, seed=4)
    adapter = CachedToyAdapter(model)
    engine = Engine(
        adapter, [Daedal(initial_gen_length=16, max_gen_length=16, block_length=4)], config=EngineConfig(max_steps=2)
    )
    result = engine.generate([[5, 6], [7]])
    assert result.stats.final_fill > 0
    assert all(0 <= t < model.vocab_size and t != model.mask_id for row in result.tokens for t in row)
    dense = Engine(
        FakeAdapter(vocab_size=24, logits_fn=model),
        [Daedal(initial_gen_length=16, max_gen_length=16, block_length=4), Dense()],
        config=EngineConfig(max_steps=2),
    ).generate([[5, 6], [7]])
    assert dense.tokens == result.tokens
