"""FastDllm against the transcription of Fast-dLLM's generate (baselines.md c.1)."""

from __future__ import annotations

import random

import pytest

from daedal.core import ConfigError, Engine
from daedal.policies.fast_dllm import FastDllm
from tests.policies.oracles.fast_dllm_oracle import fast_dllm_reference
from tests.policies.oracles.models import toy_adapter


@pytest.mark.parametrize(
    "rule",
    [dict(threshold=0.9), dict(threshold=0.5), dict(threshold=None, factor=1.0), dict(threshold=None, factor=2.5)],
)
@pytest.mark.parametrize("batch", [1, 3, 8])
def test_every_row_matches_the_batch_1_reference(rule, batch):
    rng = random.Random(batch)
    adapter = toy_adapter(seed=batch, sharpness=rng.choice([1.0, 2.0]))
    prompts = [[rng.randint(3, 20) for _ in range(rng.randint(1, 9))] for _ in range(batch)]
    params = dict(gen_length=16, block_length=rng.choice([4, 8]), **rule)
    result = Engine(adapter, policies=[FastDllm(**params)]).generate(prompts)
    expected = [fast_dllm_reference(adapter.logits_fn, p, mask_id=adapter.mask_id, **params) for p in prompts]
    assert result.tokens == [row for row, _ in expected]
    # One forward pass per step of the slowest row.
    if batch == 1:
        assert result.stats.forward_passes == expected[0][1]


def test_with_temperature_matches_the_reference_at_batch_1():
    adapter = toy_adapter(seed=1)
    params = dict(gen_length=16, block_length=8, threshold=0.7, temperature=0.8)
    result = Engine(adapter, policies=[FastDllm(**params)]).generate([[4, 5, 6]], seed=5)
    expected, passes = fast_dllm_reference(adapter.logits_fn, [4, 5, 6], mask_id=adapter.mask_id, seed=5, **params)
    assert result.tokens[0] == expected and result.stats.forward_passes == passes


def test_parallel_decoding_takes_fewer_steps_than_one_token_per_step():
    adapter = toy_adapter(seed=2, sharpness=3.0)
    result = Engine(adapter, policies=[FastDllm(gen_length=32, block_length=8, threshold=0.6)]).generate([[4, 5]])
    assert result.stats.forward_passes < 32
    assert adapter.mask_id not in result.tokens[0]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (dict(threshold=None, factor=None), "exactly one"),
        (dict(threshold=0.9, factor=1.0), "exactly one"),
        (dict(threshold=1.2), "threshold"),
        (dict(gen_length=30, block_length=8), "does not divide"),
        (dict(threshold=None, factor=-1.0), "factor"),
    ],
)
def test_bad_parameters_are_config_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        FastDllm(**params)
