"""LLaDADecoding against the transcription of LLaDA's generate (baselines.md a.1, a.2)."""

from __future__ import annotations

import random

import pytest

from daedal.core import ConfigError, Engine
from daedal.policies import LLaDADecoding
from tests.policies.oracles.llada_oracle import llada_reference
from tests.policies.oracles.models import toy_adapter


def _case(seed: int, batch: int, reference_compat: bool):
    rng = random.Random(seed * 100 + batch + 7 * reference_compat)
    block = rng.choice([4, 8, 16])
    blocks = 16 // block
    steps = rng.choice([8, 16]) if not reference_compat else rng.choice([6, 8, 16, 20])
    steps = steps - steps % blocks if not reference_compat else steps
    params = dict(
        gen_length=16,
        steps=max(steps, blocks),
        block_length=block,
        temperature=rng.choice([0.0, 0.0, 0.9]),
        cfg_scale=rng.choice([0.0, 0.0, 1.5]),
        remasking=rng.choice(["low_confidence", "random"]),
    )
    prompts = [[rng.randint(3, 20) for _ in range(rng.randint(1, 9))] for _ in range(batch)]
    return params, prompts


@pytest.mark.parametrize("reference_compat", [False, True])
@pytest.mark.parametrize("batch", range(1, 9))
def test_matches_the_oracle_token_for_token(batch, reference_compat):
    params, prompts = _case(batch, batch, reference_compat)
    adapter = toy_adapter(seed=batch, sharpness=1.0)
    result = Engine(adapter, policies=[LLaDADecoding(**params, reference_compat=reference_compat)]).generate(
        prompts, seed=3
    )
    expected, passes = llada_reference(
        adapter.logits_fn,
        prompts,
        mask_id=adapter.mask_id,
        eos_id=adapter.eos_id,
        seed=3,
        variant="daedal" if reference_compat else "llada",
        **params,
    )
    assert result.tokens == expected
    # Trailing steps after the last mask is filled cannot change anything: the engine skips them.
    assert result.stats.forward_passes <= passes
    if params["steps"] <= params["gen_length"] and params["gen_length"] // params["block_length"] <= params["steps"]:
        assert result.stats.forward_passes == passes


def test_reference_mode_left_pads_with_eos_and_steps_per_block_round_down():
    adapter = toy_adapter(seed=1)
    decoding = LLaDADecoding(gen_length=16, steps=10, block_length=4, reference_compat=True)  # 4 blocks, 2 steps each
    assert decoding.total_steps == 8
    result = Engine(adapter, policies=[decoding]).generate([[5], [6, 7, 8]])
    assert result.canvas.tokens[0, :3].tolist() == [adapter.eos_id, adapter.eos_id, 5]
    assert result.stats.forward_passes == 8
    assert all(len(row) == 16 and adapter.mask_id not in row for row in result.tokens)


def test_default_mode_rows_do_not_depend_on_the_batch():
    adapter = toy_adapter(seed=4, sharpness=1.0)
    prompts = [[random.Random(i).randint(3, 20) for _ in range(1 + i)] for i in range(8)]
    engine = Engine(adapter, policies=[LLaDADecoding(gen_length=16, steps=16, block_length=8)])
    assert engine.generate(prompts).tokens == [engine.generate([p]).tokens[0] for p in prompts]


def test_more_steps_than_masks_commits_nothing_on_some_steps():
    adapter = toy_adapter(seed=2)
    result = Engine(adapter, policies=[LLaDADecoding(gen_length=8, steps=16, block_length=8)]).generate([[5, 6]])
    assert adapter.mask_id not in result.tokens[0]
    assert result.stats.forward_passes == 8  # the 8 idle trailing steps are skipped


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (dict(gen_length=30, block_length=8), "does not divide"),
        (dict(gen_length=32, block_length=8, steps=6), "multiple of the number of blocks"),
        (dict(remasking="lowest"), "remasking"),
        (dict(temperature=-1.0), "temperature"),
        (dict(gen_length=0), "gen_length"),
    ],
)
def test_bad_parameters_are_config_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        LLaDADecoding(**params)
