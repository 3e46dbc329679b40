"""The vectorised DAEDAL policies against the per-row oracle (tests/policies/oracles/daedal_oracle.py)."""

from __future__ import annotations

import random

import pytest

from daedal.core import Engine
from daedal.policies import Daedal
from tests.policies.oracles.daedal_oracle import daedal_default, daedal_reference
from tests.policies.oracles.models import toy_adapter


def _case(seed: int, batch: int):
    """Random prompts (ragged), model and DAEDAL parameters for one case."""
    rng = random.Random(seed * 1000 + batch)
    model = dict(
        seed=seed,
        sharpness=rng.choice([0.8, 1.0, 1.5]),
        eos_gain=rng.choice([3.0, 4.0, 6.0]),
        eos_length=rng.choice([20.0, 40.0]),
        mask_logit=rng.choice([None, None, 0.5, 2.5]),
    )
    params = dict(
        initial_gen_length=rng.choice([4, 8]),
        max_gen_length=rng.choice([24, 40, 48]),
        block_length=rng.choice([4, 8]),
        high_conf_threshold=rng.choice([0.6, 0.8, 0.9]),
        low_conf_threshold=rng.choice([0.2, 0.3]),
        expansion_factor=rng.choice([2, 3, 4]),
        eos_confidence_threshold=rng.choice([0.3, 0.5]),
        expand_eos_confidence_threshold=rng.choice([0.6, 0.9]),
        eos_check_tokens=rng.choice([4, 8]),
    )
    prompts = [[rng.randint(3, 20) for _ in range(rng.randint(1, 9))] for _ in range(batch)]
    return model, params, prompts


@pytest.mark.parametrize("batch", range(1, 9))
@pytest.mark.parametrize("seed", range(3))
def test_reference_compat_matches_the_oracle_token_for_token(seed, batch):
    model, params, prompts = _case(seed, batch)
    adapter = toy_adapter(**model)
    result = Engine(adapter, policies=[Daedal(**params, reference_compat=True)]).generate(prompts)
    expected, passes = daedal_reference(
        adapter.logits_fn, prompts, mask_id=adapter.mask_id, eos_id=adapter.eos_id, **params
    )
    assert result.tokens == expected
    assert result.stats.forward_passes == passes


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_reference_compat_matches_the_oracle_with_temperature(batch):
    model, params, prompts = _case(7, batch)
    adapter = toy_adapter(**model)
    daedal = Daedal(**params, temperature=0.7, reference_compat=True)
    result = Engine(adapter, policies=[daedal]).generate(prompts, seed=11)
    expected, _ = daedal_reference(
        adapter.logits_fn, prompts, mask_id=adapter.mask_id, eos_id=adapter.eos_id, temperature=0.7, seed=11, **params
    )
    assert result.tokens == expected


def test_the_cases_exercise_every_rule():
    """Guard against a vacuous oracle test: the random cases must expand, truncate, fall back."""
    expansions = truncated = 0
    lengths = set()
    for seed in range(3):
        for batch in range(1, 9):
            model, params, prompts = _case(seed, batch)
            result = Engine(toy_adapter(**model), policies=[Daedal(**params, reference_compat=True)]).generate(prompts)
            expansions += result.stats.expansions
            truncated += sum(n == params["max_gen_length"] for n in result.lengths)
            lengths.update(result.lengths)
    assert expansions > 50 and truncated > 5 and len(lengths) > 10


@pytest.mark.parametrize("seed", range(3))
def test_default_mode_rows_equal_the_same_prompt_alone(seed):
    model, params, prompts = _case(seed, 8)
    adapter = toy_adapter(**model)
    engine = Engine(adapter, policies=[Daedal(**params)])
    batched = engine.generate(prompts)
    alone = [engine.generate([p]).tokens[0] for p in prompts]
    assert batched.tokens == alone
    assert alone == daedal_default(adapter.logits_fn, prompts, mask_id=adapter.mask_id, eos_id=adapter.eos_id, **params)
    assert batched.canvas.pad_id == adapter.pad_id
    assert batched.canvas.prompt_len.tolist() == [len(p) for p in prompts]


def test_default_mode_never_truncates():
    model, params, prompts = _case(1, 8)
    params.update(max_gen_length=20, initial_gen_length=8, expansion_factor=4)
    adapter = toy_adapter(**model)
    result = Engine(adapter, policies=[Daedal(**params)]).generate(prompts, record=True)
    for step in result.trace.of_kind("step-finished"):
        assert not step["truncate"]
    assert max(result.lengths) <= 20


def test_both_modes_agree_on_a_single_unclamped_row():
    model, params, prompts = _case(2, 1)
    params.update(max_gen_length=400)
    adapter = toy_adapter(**model)
    ref = Engine(adapter, policies=[Daedal(**params, reference_compat=True)]).generate(prompts)
    default = Engine(adapter, policies=[Daedal(**params)]).generate(prompts)
    assert ref.tokens == default.tokens
