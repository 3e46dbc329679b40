"""DreamDecoding against the transcription of Dream's diffusion_generate (baselines.md (b))."""

from __future__ import annotations

import random

import pytest

from daedal.core import ConfigError, Engine
from daedal.policies import DreamDecoding
from daedal.policies.dream import ALGORITHMS
from tests.policies.oracles.dream_oracle import dream_reference
from tests.policies.oracles.models import toy_adapter


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("batch", range(1, 9))
def test_matches_the_oracle_token_for_token(alg, batch):
    rng = random.Random(ALGORITHMS.index(alg) * 100 + batch)
    adapter = toy_adapter(seed=batch, sharpness=1.0, mask_logit=rng.choice([None, None, 1.0]))
    prompts = [[rng.randint(3, 20) for _ in range(rng.randint(1, 9))] for _ in range(batch)]
    params = dict(
        max_new_tokens=rng.choice([8, 12]),
        steps=rng.choice([4, 8, 12, 16]),
        alg=alg,
        alg_temp=rng.choice([None, 0.5]),
        temperature=rng.choice([0.0, 0.7]),
        top_p=rng.choice([None, 0.9]),
        top_k=rng.choice([None, 5]),
        eps=rng.choice([1e-3, 0.1]),
    )
    result = Engine(adapter, policies=[DreamDecoding(**params)]).generate(prompts, seed=batch)
    expected, passes = dream_reference(adapter.logits_fn, prompts, mask_id=adapter.mask_id, seed=batch, **params)
    assert result.tokens == expected
    assert result.stats.forward_passes == passes


@pytest.mark.parametrize("alg", ["maskgit_plus", "topk_margin", "entropy"])
def test_greedy_rows_do_not_depend_on_the_batch(alg):
    adapter = toy_adapter(seed=5, sharpness=1.0)
    prompts = [[3 + i] * (1 + i) for i in range(8)]
    engine = Engine(adapter, policies=[DreamDecoding(max_new_tokens=12, steps=12, alg=alg)])
    assert engine.generate(prompts).tokens == [engine.generate([p]).tokens[0] for p in prompts]


def test_eps_schedule_has_idle_steps_and_dumps_the_rest_on_the_last_step():
    adapter = toy_adapter(seed=2)
    result = Engine(adapter, policies=[DreamDecoding(max_new_tokens=8, steps=8, alg="entropy")]).generate(
        [[5, 6]], record=True
    )
    filled = [sum(len(row) for row in e["filled"]) for e in result.trace.of_kind("step-finished")]
    # int(8 * (1 - t_{i+1}/t_i)) truncates to 0 on the first step; the last step takes what is left.
    assert filled[0] == 0 and sum(filled) == 8 and len(filled) == 8
    assert adapter.mask_id not in result.tokens[0]


def test_origin_is_random_even_when_greedy():
    adapter = toy_adapter(seed=3)
    engine = Engine(adapter, policies=[DreamDecoding(max_new_tokens=12, steps=6, alg="origin")])
    runs = {tuple(engine.generate([[5, 6]], seed=s).tokens[0]) for s in range(6)}
    assert len(runs) > 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (dict(alg="greedy"), "alg"),
        (dict(eps=0.0), "eps"),
        (dict(eps=1.5), "eps"),
        (dict(top_p=1.5), "top_p"),
        (dict(top_k=0), "top_k"),
        (dict(steps=0), "steps"),
        (dict(temperature=-0.1), "temperature"),
    ],
)
def test_bad_parameters_are_config_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        DreamDecoding(**params)
