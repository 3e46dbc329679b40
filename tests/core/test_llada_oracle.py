"""The default engine decodes exactly like LLaDA's published algorithm (an oracle transcription)."""

from __future__ import annotations

import random

import pytest

from daedal.core import Engine, FixedLength, GumbelTemperature, SemiAutoregressive
from daedal.core.testing import FakeAdapter
from tests.core.oracles.llada import llada_generate


def ragged_prompts(batch: int, seed: int, vocab: int = 40) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(4, vocab - 1) for _ in range(rng.randint(1, 9))] for _ in range(batch)]


@pytest.mark.parametrize("batch", [1, 3, 8])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_engine_matches_llada_oracle(batch, seed, temperature):
    adapter = FakeAdapter(vocab_size=48, seed=seed)
    prompts = ragged_prompts(batch, seed)
    engine = Engine(
        adapter,
        [
            FixedLength(gen_length=32),
            SemiAutoregressive(block_length=8, steps=16),
            GumbelTemperature(temperature=temperature),
        ],
    )
    result = engine.generate(prompts, seed=seed)
    expected = llada_generate(
        adapter, prompts, gen_length=32, steps=16, block_length=8, temperature=temperature, seed=seed
    )
    assert result.tokens == expected
    assert result.stats.forward_passes == 16


def test_engine_with_only_an_adapter_is_llada_with_its_defaults():
    adapter = FakeAdapter(vocab_size=40, seed=5)
    prompts = ragged_prompts(3, 5)
    result = Engine(adapter).generate(prompts)
    assert result.tokens == llada_generate(adapter, prompts, gen_length=128, steps=128, block_length=128)
    assert result.stats.forward_passes == 128
    assert result.lengths == [128, 128, 128]


@pytest.mark.parametrize("seed", [0, 3])
def test_random_remasking_matches_oracle(seed):
    adapter = FakeAdapter(vocab_size=48, seed=seed)
    prompts = ragged_prompts(4, seed)
    engine = Engine(
        adapter, [FixedLength(gen_length=16), SemiAutoregressive(block_length=8, steps=8, remasking="random")]
    )
    expected = llada_generate(adapter, prompts, gen_length=16, steps=8, block_length=8, remasking="random", seed=seed)
    assert engine.generate(prompts, seed=seed).tokens == expected


def test_mask_predictions_stay_masked_like_the_reference():
    """When the argmax is the mask id, LLaDA 'commits' the mask: the slot stays masked."""
    adapter = FakeAdapter(vocab_size=10, seed=2, predict_mask=True)
    prompts = ragged_prompts(3, 2, vocab=10)
    engine = Engine(adapter, [FixedLength(gen_length=16), SemiAutoregressive(block_length=8, steps=16)])
    result = engine.generate(prompts)
    assert result.tokens == llada_generate(adapter, prompts, gen_length=16, steps=16, block_length=8)
    assert any(adapter.mask_id in row for row in result.tokens), "the fake never predicted the mask id"


def test_more_steps_than_masks_runs_idle_steps_like_the_reference():
    adapter = FakeAdapter(vocab_size=40, seed=4)
    prompts = ragged_prompts(2, 4)
    engine = Engine(adapter, [FixedLength(gen_length=8), SemiAutoregressive(block_length=4, steps=12)])
    result = engine.generate(prompts)
    assert result.tokens == llada_generate(adapter, prompts, gen_length=8, steps=12, block_length=4)
    # Quotas per block are [1, 1, 1, 1, 0, 0]: the first block's idle steps still run (its
    # window is not the last), but once no mask is left the engine stops instead of spending
    # the reference's two trailing idle forward passes, which cannot change the output.
    assert result.stats.forward_passes == 10
